package announcer

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// ScrapeURL returns the scrape URL of an HTTP announce URL (BEP 48): the last path
// component must begin with "announce", which becomes "scrape"; the rest is kept.
// Otherwise the error wraps ErrNoScrape.
func ScrapeURL(announce string) (string, error) {
	q := strings.IndexByte(announce, '?')
	if q < 0 {
		q = len(announce)
	}
	path, query := announce[:q], announce[q:]
	// The path begins at the first '/' after the scheme's "://" (the host never counts).
	auth := strings.Index(path, "://")
	if auth < 0 {
		return "", fmt.Errorf("tracker %q: %w", announce, ErrNoScrape)
	}
	slash := strings.LastIndexByte(path, '/')
	if slash < auth+3 || !strings.HasPrefix(path[slash+1:], "announce") {
		return "", fmt.Errorf("tracker %q: %w", announce, ErrNoScrape)
	}
	return path[:slash+1] + "scrape" + path[slash+1+len("announce"):] + query, nil
}

// scrapeReply is a BEP 48 scrape reply.
type scrapeReply struct {
	FailureReason *string `bencode:"failure reason"`
	Files         map[string]struct {
		Complete   int64 `bencode:"complete"`
		Downloaded int64 `bencode:"downloaded"`
		Incomplete int64 `bencode:"incomplete"`
	} `bencode:"files"`
}

// Scrape asks the tracker at rawURL (http, https or udp) for the counts of ih: Seeders,
// Leechers and Downloaded of the Status are set, and URL. c serves HTTP (nil: a client of
// its own); UDP follows BEP 15's retransmission schedule. ctx bounds the whole exchange.
func Scrape(ctx context.Context, c *http.Client, rawURL string, ih bittorrent.InfoHash) (Status, error) {
	st := Status{URL: rawURL}
	u, err := parseTrackerURL(rawURL)
	if err != nil {
		return st, fmt.Errorf("scrape: %w", err)
	}
	name := redact(u)
	if u.Scheme == "udp" {
		uc := newUDPConn(u, DefaultUDPTimeout, DefaultUDPRetries)
		defer uc.close()
		p, _, err := uc.request(ctx, bittorrent.UDPScrape, ih[:], nil)
		if err != nil {
			return st, fmt.Errorf("scrape %s: %w", name, err)
		}
		if len(p) < 12 {
			return st, fmt.Errorf("scrape %s: %w: reply of %d bytes", name, ErrBadReply, len(p)+8)
		}
		st.Seeders = clampCount(int64(binary.BigEndian.Uint32(p)))
		st.Downloaded = clampCount(int64(binary.BigEndian.Uint32(p[4:])))
		st.Leechers = clampCount(int64(binary.BigEndian.Uint32(p[8:])))
		return st, nil
	}
	su, err := ScrapeURL(rawURL)
	if err != nil {
		return st, fmt.Errorf("scrape: %w", err)
	}
	b := appendQuerySep([]byte(su), su)
	b = append(b, "info_hash="...)
	b = appendEscaped(b, ih[:])
	if c == nil {
		c = &http.Client{}
	}
	body, err := httpGet(ctx, c, string(b))
	if err != nil {
		return st, fmt.Errorf("scrape %s: %w", name, err)
	}
	var r scrapeReply
	if err := unmarshal(body, &r); err != nil {
		return st, fmt.Errorf("scrape %s: %w", name, err)
	}
	if r.FailureReason != nil {
		return st, fmt.Errorf("scrape %s: %w", name, &FailureError{Reason: *r.FailureReason})
	}
	f, ok := r.Files[string(ih[:])]
	if !ok {
		return st, fmt.Errorf("scrape %s: %v: %w", name, ih, ErrNotInScrape)
	}
	st.Seeders, st.Leechers, st.Downloaded = clampCount(f.Complete), clampCount(f.Incomplete), clampCount(f.Downloaded)
	return st, nil
}
