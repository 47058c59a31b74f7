package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/webswarm/webswarm/internal/version"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// fetchTimeout bounds fetching a .torrent by URL.
const fetchTimeout = 30 * time.Second

// sourceArg is the torrent given as the argument or by --url (not both).
func sourceArg(args []string, url string) (string, error) {
	switch {
	case len(args) == 1 && url != "":
		return "", fmt.Errorf("give the torrent either as an argument or with --url, not both")
	case len(args) == 1:
		return args[0], nil
	case url != "":
		return url, nil
	}
	return "", errors.New("no torrent: give a .torrent file, its URL (or --url) or a magnet link")
}

// isURL reports whether src is an http(s) URL.
func isURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// fetchTorrent downloads and parses a .torrent, bounded in size and time.
func fetchTorrent(ctx context.Context, c *http.Client, u string, lim metafile.Limits) (*metafile.Torrent, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("torrent URL %q: %w", u, err)
	}
	req.Header.Set("User-Agent", "webswarm-seedctl/"+version.Version)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, lim.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	t, err := lim.Parse(body) // refuses a body over lim.MaxSize
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return t, nil
}

// torrentSource is a resolved torrent: parsed, or a magnet still without metadata.
type torrentSource struct {
	t      *metafile.Torrent
	magnet *metainfo.Magnet
	dir    string // where the .torrent file is, for seed's default data dir
}

// resolveSource turns seed's or get's argument (a .torrent file, its http(s) URL or a magnet
// link) into a torrentSource.
func resolveSource(ctx context.Context, c *http.Client, src string, lim metafile.Limits) (*torrentSource, error) {
	switch {
	case strings.HasPrefix(src, "magnet:"):
		m, err := metainfo.ParseMagnetUri(src)
		if err != nil {
			return nil, fmt.Errorf("magnet link: %w", err)
		}
		if len(m.Trackers) == 0 {
			return nil, errors.New("magnet link has no tr= tracker: seedctl finds peers only through trackers")
		}
		return &torrentSource{magnet: &m}, nil
	case isURL(src):
		t, err := fetchTorrent(ctx, c, src, lim)
		if err != nil {
			return nil, err
		}
		return &torrentSource{t: t, dir: "."}, nil
	}
	t, err := lim.Load(src)
	if err != nil {
		return nil, err
	}
	return &torrentSource{t: t, dir: filepath.Dir(src)}, nil
}
