package announcer

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

func TestNewValidates(t *testing.T) {
	ok := "http://t.example/announce"
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		bad   string // the URL the error must name, if any
		isURL bool
	}{
		{name: "ftp", edit: func(c *Config) { c.Tiers = [][]string{{ok}, {"ftp://t.example/announce"}} }, bad: "ftp://t.example/announce", isURL: true},
		{name: "udp without port", edit: func(c *Config) { c.Tiers = [][]string{{"udp://t.example"}} }, bad: "udp://t.example", isURL: true},
		{name: "no host", edit: func(c *Config) { c.Tiers = [][]string{{"http:///announce"}} }, bad: "http:///announce", isURL: true},
		{name: "unparsable", edit: func(c *Config) { c.Tiers = [][]string{{"http://t.example/%zz"}} }, bad: "http://t.example/%zz", isURL: true},
		{name: "only WebSocket trackers", edit: func(c *Config) { c.Tiers = [][]string{{"wss://t.example/announce"}, {"WS://t.example/announce"}} }, isURL: true},
		{name: "no trackers", edit: func(c *Config) { c.Tiers = [][]string{{}, nil} }, isURL: true},
		{name: "port 0", edit: func(c *Config) { c.Port = 0 }},
		{name: "negative numwant", edit: func(c *Config) { c.NumWant = -1 }},
		{name: "short interval", edit: func(c *Config) { c.Interval = time.Millisecond }},
		{name: "min peers without count", edit: func(c *Config) { c.MinPeers = 3; c.PeerCount = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig([][]string{{ok}}, hash("validate"), 1)
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.isURL != errors.Is(err, ErrBadURL) {
				t.Errorf("%v: ErrBadURL %v, want %v", err, errors.Is(err, ErrBadURL), tc.isURL)
			}
			if tc.bad != "" && !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%v does not name %q", err, tc.bad)
			}
		})
	}
}

func TestNewDefaultsAndDuplicates(t *testing.T) {
	cfg := testConfig([][]string{{"udp://a.example:1", "http://b.example/announce"}, {}, {"udp://a.example:1", "https://c.example/announce"}}, hash("dup"), 1)
	cfg.Progress, cfg.Logger, cfg.HTTP = nil, nil, nil
	a := mustNew(t, cfg)
	if len(a.tiers) != 2 || len(a.tiers[0]) != 2 || len(a.tiers[1]) != 1 || a.tiers[1][0].raw != "https://c.example/announce" {
		t.Errorf("tiers %v: want the duplicate and the empty tier dropped", a.tiers)
	}
	if a.cfg.NumWant != DefaultNumWant || a.cfg.HTTP == nil || a.cfg.Logger == nil || a.cfg.Progress() != (Progress{}) {
		t.Errorf("defaults not set: %+v", a.cfg)
	}
	b := mustNew(t, cfg)
	if a.key == b.key {
		t.Errorf("two announcers drew the same key %08X", a.key)
	}
}

// TestNewSkipsWebSocketTrackers: the tier of WebSocket trackers publish writes for browsers
// is left out, so that the agent seeds a published torrent over HTTP and UDP.
func TestNewSkipsWebSocketTrackers(t *testing.T) {
	cfg := testConfig([][]string{{"http://a.example/announce"}, {"wss://a.example/announce", "ws://b.example/announce"}, {"udp://a.example:1"}}, hash("ws"), 1)
	a := mustNew(t, cfg)
	if len(a.tiers) != 2 || a.tiers[0][0].raw != "http://a.example/announce" || a.tiers[1][0].raw != "udp://a.example:1" {
		t.Errorf("tiers %v: want the WebSocket tier dropped", a.tiers)
	}
}

func TestRedact(t *testing.T) {
	u, err := parseTrackerURL("https://user:pw@t.example/ann/announce?passkey=secret")
	if err != nil {
		t.Fatal(err)
	}
	if got := redact(u); strings.Contains(got, "secret") || strings.Contains(got, "pw") || got != "https://t.example/ann/announce" {
		t.Errorf("redact: %q", got)
	}
}

// The info-hash in log lines is hex in both slog handlers (a bare [20]byte would be a JSON
// array of numbers).
func TestLogHash(t *testing.T) {
	var ih bittorrent.InfoHash
	ih[0], ih[19] = 0xab, 0x01
	want := "ab000000000000000000000000000000000000" + "01"
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "info_hash", logHash(ih))
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "info_hash", logHash(ih))
	if got := strings.Count(b.String(), want); got != 2 {
		t.Errorf("info-hash as hex in %d of 2 lines:\n%s", got, b.String())
	}
}
