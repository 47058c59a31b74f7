package job

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/tracker/swarm"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

// TestWebRTCDownload: a torrent whose only tracker is a WebSocket one is downloaded from a
// seeding job over WebRTC data channels, through our tracker's WebSocket frontend — the
// session engine serving a WebRTC peer as it serves a TCP one. With only WebSocket trackers
// listed, the job runs no HTTP/UDP announcer (it would have no URL) and still starts.
func TestWebRTCDownload(t *testing.T) {
	ws, err := wsapi.New(wsapi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.ServeWebSocket(w, r, netip.MustParseAddr("127.0.0.1"))
	}))
	defer hs.Close()
	defer ws.Close()

	seedDir, getDir := t.TempDir(), t.TempDir()
	mt := makeTorrent(t, seedDir)
	mt.Trackers = [][]string{{"ws" + strings.TrimPrefix(hs.URL, "http") + "/announce"}}
	transport := func() *rtc.Transport {
		tr, err := rtc.NewTransport(rtc.Config{Bind: netip.MustParseAddr("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	start := func(dir string, download bool, tag string) (*Job, func()) {
		var id bittorrent.PeerID
		copy(id[:], "-WS0001-"+tag+"xxxxxxxxxxxxxxxxxxxx")
		j, err := New(Config{Torrent: mt, DataDir: dir, Download: download, Check: resume.Fast,
			Session: session.Config{PeerID: id}, WebRTC: transport(),
			StopTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		return j, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", tag, err)
			}
		}
	}
	_, stopSeed := start(seedDir, false, "seed")
	defer stopSeed()
	getter, stopGet := start(getDir, true, "get")
	defer stopGet()
	select {
	case <-getter.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("download over WebRTC did not finish: %+v", getter.Stats().Session)
	}
	want, _ := os.ReadFile(filepath.Join(seedDir, "data.bin"))
	got, err := os.ReadFile(filepath.Join(getDir, "data.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded payload differs (%v)", err)
	}
	// The getter told the WebSocket tracker it completed, without waiting for its
	// re-announce: two seeders, one completion.
	wantCounts := swarm.Counts{Complete: 2, Downloaded: 1}
	testenv.WaitFor(t, 10*time.Second, "the tracker to count the completion", func() error {
		if c, _ := ws.Counts(mt.InfoHash); c != wantCounts {
			return fmt.Errorf("counts %+v, want %+v", c, wantCounts)
		}
		return nil
	})
}
