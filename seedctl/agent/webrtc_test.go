package agent

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

// startWSTracker serves our tracker's WebSocket (WebTorrent) frontend on loopback and
// returns its ws:// announce URL.
func startWSTracker(t *testing.T) string {
	t.Helper()
	ws, err := wsapi.New(wsapi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.ServeWebSocket(w, r, netip.MustParseAddr("127.0.0.1"))
	}))
	t.Cleanup(func() {
		hs.Close()
		ws.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/announce"
}

func loopbackTransport(t *testing.T) *rtc.Transport {
	t.Helper()
	tr, err := rtc.NewTransport(rtc.Config{Bind: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// sessionRunning reports whether ih (hex) has a session, after a housekeeping pass (which
// would stop an idle one, or start one a torrent for browsers lacks).
func (r *running) sessionRunning(t *testing.T, ih string) bool {
	t.Helper()
	r.housekeep()
	r.mu.Lock()
	defer r.mu.Unlock()
	tor := r.byHash[mustHash(t, ih)]
	return tor != nil && tor.run != nil
}

// An agent seeding a directory whose torrent lists only a ws:// tracker serves a download
// over WebRTC alone: the getter has no TCP peer and no HTTP tracker, only our tracker's
// WebSocket frontend relaying offers and answers. The session runs without any peer having
// asked for it, since the WebSocket announce lives in it.
func TestWebRTCSeedsToAJob(t *testing.T) {
	wsURL := startWSTracker(t)
	dir := t.TempDir()
	ih := publish(t, dir, "browser.iso", wsURL)
	cfg := testConfig(t, dir)
	cfg.WebRTC = loopbackTransport(t)
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	cfg.IdleTimeout = 50 * time.Millisecond // an idle torrent for browsers must keep its session
	r := start(t, cfg)
	r.waitState(t, ih, Seeding)
	if !r.sessionRunning(t, ih) {
		t.Fatal("a seeding torrent for browsers has no session: nobody would answer a browser's offer")
	}

	mt, err := metafile.Load(filepath.Join(dir, "browser.iso.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	getDir := t.TempDir()
	var id bittorrent.PeerID
	copy(id[:], "-WS0001-getter000000")
	j, err := job.New(job.Config{Torrent: mt, DataDir: getDir, Download: true, Check: resume.Fast,
		Session: session.Config{PeerID: id}, WebRTC: loopbackTransport(t),
		StopTimeout: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("getter: %v", err)
		}
	}()
	select {
	case <-j.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("download from the agent over WebRTC did not finish: %+v", j.Stats().Session)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "browser.iso"))
	got, err := os.ReadFile(filepath.Join(getDir, "browser.iso"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded payload differs (%v)", err)
	}
	// The bytes went to a WebRTC peer, and the metrics say so (the agent counts a block
	// once its write returned, which may be after the getter has it).
	byTransport := func() map[string]float64 {
		out := make(map[string]float64)
		for _, m := range gather(t, reg)["webswarm_seed_transport_uploaded_bytes_total"].GetMetric() {
			out[label(m, "transport")] = m.GetCounter().GetValue()
		}
		return out
	}
	waitUntil(t, "the upload counted as webrtc", func() bool { return byTransport()["webrtc"] >= float64(len(want)) })
	if got := byTransport(); got["tcp"] != 0 || len(got) != 2 {
		t.Errorf("uploaded bytes by transport %v: want webrtc only, both series present", got)
	}
	// The getter, a seed now, stays connected until it stops: list and status show it.
	waitUntil(t, "the getter listed as a WebRTC peer", func() bool { return r.Status().WebRTC == 1 })
	if l := r.List(); len(l) != 1 || l[0].WebRTC != 1 || l[0].Peers != 1 {
		t.Errorf("list %+v: want one peer, over WebRTC", l)
	}
}

// Without a Transport (--webrtc off) a torrent listing only a ws:// tracker still seeds
// (no HTTP/UDP announcer to fail on) but its session stays idle: nothing announces to the
// WebSocket tracker, so no browser reaches it.
func TestWebRTCOffStaysIdle(t *testing.T) {
	wsURL := startWSTracker(t)
	dir := t.TempDir()
	ih := publish(t, dir, "browser.iso", wsURL)
	r := start(t, testConfig(t, dir))
	r.waitState(t, ih, Seeding)
	if r.sessionRunning(t, ih) {
		t.Fatal("WebRTC off, yet the torrent's session runs without a peer")
	}
}
