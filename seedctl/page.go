package main

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// DefaultBundleURL is where the download page loads the webtorrent browser bundle from: a path
// on the admin's own site (npm webtorrent 3.x, dist/webtorrent.min.js), never a CDN.
const DefaultBundleURL = "/webtorrent/webtorrent.min.js"

// DefaultPageMaxSize is the largest payload the download page offers to download inside the
// browser: webtorrent keeps a browser download in memory, and the page copies it once more
// into the Blob it hands over. Above it the page offers the plain link and the .torrent only.
const DefaultPageMaxSize = 1 << 30

//go:embed page.tmpl
var pageTemplateText string

// pageTemplate is parsed once; it is never modified after.
var pageTemplate = template.Must(template.New("page").Parse(pageTemplateText))

// pageInfo is what the download page shows and where its script fetches from.
type pageInfo struct {
	ID         string // element id, unique per torrent on a page
	Name       string // the torrent's name: untrusted, escaped by html/template
	Size       string
	TorrentURL string // the .torrent, as a URL path on the site (the page is served by the site)
	FileURL    string // the plain HTTP download, the fallback
	BundleURL  string
	ICE        string // JSON list of RTCIceServer for webtorrent's rtcConfig
	Browser    bool   // offer the download inside the browser (not above --page-max-size)
}

// newPageInfo describes the page for made, published at torrentURL with fileURL as its
// plain download. stun lists STUN/TURN URLs for WebRTC; none keeps every connection on
// addresses the browser knows itself (no third-party server is asked).
func newPageInfo(made *metafile.Made, torrentURL, fileURL, bundleURL string, stun []string, maxSize int64) (pageInfo, error) {
	tu, err := url.Parse(torrentURL)
	if err != nil {
		return pageInfo{}, fmt.Errorf("page: torrent URL %q: %w", torrentURL, err)
	}
	// Path-absolute: the page and the box work on any host name the site answers to.
	torrentPath := tu.EscapedPath()
	ice := []map[string][]string{}
	if len(stun) > 0 {
		ice = append(ice, map[string][]string{"urls": stun})
	}
	iceJSON, err := json.Marshal(ice)
	if err != nil {
		return pageInfo{}, err
	}
	return pageInfo{
		ID:         "webswarm-" + hex.EncodeToString(made.InfoHash[:6]),
		Name:       made.Name,
		Size:       metafile.FormatSize(made.TotalLength),
		TorrentURL: torrentPath,
		FileURL:    fileURL,
		BundleURL:  bundleURL,
		ICE:        string(iceJSON),
		Browser:    made.TotalLength <= maxSize,
	}, nil
}

// render returns the whole page (what) "page", or the embeddable box, "box".
func (p pageInfo) render(what string) (string, error) {
	var b strings.Builder
	if err := pageTemplate.ExecuteTemplate(&b, what, p); err != nil {
		return "", fmt.Errorf("page: %w", err)
	}
	return b.String(), nil
}

// checkBundleURL refuses a --bundle-url that is not a path on the site or an http(s) URL.
func checkBundleURL(s string) error {
	u, err := url.Parse(s)
	if err == nil && (strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") || (u.Scheme == "https" || u.Scheme == "http") && u.Host != "") {
		return nil
	}
	return fmt.Errorf("--bundle-url %q: want a path on the site (like %s) or an http(s) URL", s, DefaultBundleURL)
}

// checkSTUN refuses --stun URLs that are not stun: or stuns: URLs with a host.
func checkSTUN(urls []string) error {
	for _, s := range urls {
		scheme, host, _ := strings.Cut(s, ":")
		if (scheme != "stun" && scheme != "stuns") || host == "" || strings.ContainsAny(host, "/ ") {
			return fmt.Errorf("--stun %q: want a stun: URL, like stun:stun.example.org:3478", s)
		}
	}
	return nil
}

// pageFlags are publish's flags for browsers: the WebSocket tracker tier and the download page.
type pageFlags struct {
	wsTracker string
	page      bool
	html      bool
	bundleURL string
	stun      []string
	maxSize   byteSize
}

func (pf *pageFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&pf.wsTracker, "ws-tracker", "", "WebSocket announce URL for browsers, listed in a tier after the HTTP tracker's (default: the tracker's URL with ws:// or wss://; \"none\" leaves it out)")
	fl.BoolVar(&pf.page, "page", false, "also write FILE.html beside FILE: a download page for browsers (WebTorrent, falling back to the plain link)")
	fl.BoolVar(&pf.html, "html", false, "print the download page's box, to paste into a page of the site")
	fl.StringVar(&pf.bundleURL, "bundle-url", DefaultBundleURL, "where the page loads webtorrent.min.js (npm webtorrent 3.x, dist/): a path on the site, never a CDN")
	pf.maxSize = DefaultPageMaxSize
	fl.Var(&pf.maxSize, "page-max-size", "largest payload the page downloads inside the browser, which holds it in memory (bytes, or with a unit: 2GiB); above it the page offers the plain link and the .torrent only")
	fl.StringArrayVar(&pf.stun, "stun", nil, "STUN server the page's WebRTC may ask for its public address (stun:host:port; repeatable; default none: only addresses the browser knows)")
}

// check validates the flags before anything is hashed.
func (pf *pageFlags) check() error {
	if err := checkBundleURL(pf.bundleURL); err != nil {
		return err
	}
	if err := checkSTUN(pf.stun); err != nil {
		return err
	}
	if pf.maxSize < 0 {
		return fmt.Errorf("--page-max-size %d: want 0 (never in the browser) or more", pf.maxSize)
	}
	if pf.wsTracker != "" && pf.wsTracker != "none" {
		u, err := url.Parse(pf.wsTracker)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--ws-tracker %q: want a ws:// or wss:// URL, or none", pf.wsTracker)
		}
	}
	return nil
}

// wsTrackerFor returns the WebSocket announce URL for the HTTP tracker URL tracker: the flag's,
// or tracker with ws:// for http:// and wss:// for https:// (the tracker answers both on the
// same path); "" for none, or for a udp:// tracker.
func (pf *pageFlags) wsTrackerFor(tracker string) (string, error) {
	switch pf.wsTracker {
	case "none":
		return "", nil
	case "":
	default:
		return pf.wsTracker, nil
	}
	u, err := url.Parse(tracker)
	if err != nil {
		return "", fmt.Errorf("tracker %q: %w", tracker, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", nil
	}
	return u.String(), nil
}
