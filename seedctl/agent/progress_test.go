package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/session"
)

// download fetches the torrent at torrentPath from the agent alone, as a peer would, into a
// directory of its own, and returns once every piece is verified.
func download(t *testing.T, r *running, torrentPath string) {
	t.Helper()
	mi, err := metafile.Load(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	var id bittorrent.PeerID
	copy(id[:], "-XX0000-leecher00000")
	j, err := job.New(job.Config{
		Torrent:    mi,
		DataDir:    t.TempDir(),
		Download:   true,
		NoAnnounce: true,
		Session:    session.Config{PeerID: id, Logger: quiet()},
		Logger:     quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("downloader: %v", err)
		}
	}()
	select {
	case <-j.Ready():
	case err := <-done:
		t.Fatalf("downloader stopped before its session ran: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("downloader not ready in 10 s")
	}
	ap := netip.MustParseAddrPort(r.Addr().String())
	j.Session().AddPeers([]netip.AddrPort{ap})
	select {
	case <-j.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("download from the agent not done in 10 s")
	}
}

// The stopped announce at shutdown reports what this run uploaded, whether the torrent's
// session stopped for being idle before, or a Verify re-checked the torrent meanwhile
// (e2e saw uploaded=0 after a Verify: the re-check moved the figure announces count from).
func TestStoppedAnnounceCountsThisRunsUpload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		idle   time.Duration
		verify bool
	}{
		{"session idle before the stop", 100 * time.Millisecond, false},
		{"verify after the upload", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := startTracker(t)
			dir := t.TempDir()
			h := publish(t, dir, "up.iso", tr.URL)
			cfg := testConfig(t, dir)
			cfg.IdleTimeout = tc.idle
			// A first run that uploads nothing: the record then holds uploaded 0, so a
			// wrong starting figure cannot hide behind a missing record.
			r := start(t, cfg)
			r.waitState(t, h, Seeding)
			waitUntil(t, "started", func() bool { return tr.events(h, "started") == 1 })
			r.stop(t)

			r = start(t, cfg)
			r.waitState(t, h, Seeding)
			waitUntil(t, "second started", func() bool { return tr.events(h, "started") == 2 })
			download(t, r, filepath.Join(dir, "up.iso.torrent"))
			const size = 64 << 10
			waitUntil(t, "upload counted", func() bool {
				ti, err := r.Get(mustHash(t, h))
				return err == nil && ti.Uploaded == size
			})
			if tc.verify {
				if err := r.Verify(mustHash(t, h)); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, "re-checked and seeding", func() bool {
					return r.checksHashed.Load() == 1 && tr.events(h, "started") == 3
				})
				r.waitState(t, h, Seeding)
			} else {
				waitUntil(t, "session stopped as idle", func() bool {
					r.mu.Lock()
					defer r.mu.Unlock()
					return r.byHash[mustHash(t, h)].run == nil
				})
			}
			if ti, _ := r.Get(mustHash(t, h)); ti.Uploaded != size {
				t.Errorf("uploaded %d after the session ended, want %d", ti.Uploaded, size)
			}
			r.stop(t)
			ups := tr.uploads(h, "stopped")
			if len(ups) == 0 || ups[len(ups)-1] != "65536" {
				t.Errorf("stopped announces carried uploaded=%v, the last should be 65536", ups)
			}
			if ups[0] != "0" {
				t.Errorf("the first run's stopped announce carried uploaded=%s, want 0", ups[0])
			}
			if tc.verify && !slices.Equal(ups[1:], []string{"65536", "65536"}) {
				t.Errorf("second run's stopped announces (verify, shutdown) carried %v, want 65536 twice", ups[1:])
			}
			if _, err := os.Stat(filepath.Join(cfg.StateDir, h+".resume")); err != nil {
				t.Error(err)
			}
		})
	}
}
