package agent

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/wire"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/httpapi"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// tracker is the project's tracker served in-process on loopback, with a log of the
// announces it received.
type tracker struct {
	URL string
	mu  sync.Mutex
	got []announceReq
}

type announceReq struct {
	ih       string // hex
	event    string
	uploaded string
}

func startTracker(t testing.TB) *tracker {
	t.Helper()
	store, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	core, err := announce.New(announce.Config{Logger: quiet()}, store, announce.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		core.Close()
		store.Close()
	})
	h, err := httpapi.New(httpapi.Config{Tracker: core, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracker{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/announce" {
			q := r.URL.Query()
			tr.mu.Lock()
			tr.got = append(tr.got, announceReq{ih: fmt.Sprintf("%x", q.Get("info_hash")), event: q.Get("event"), uploaded: q.Get("uploaded")})
			tr.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.URL = srv.URL + "/announce"
	return tr
}

// uploads returns the uploaded figures of ih's (hex) announces with event ev, in order.
func (tr *tracker) uploads(ih, ev string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, r := range tr.got {
		if r.ih == ih && r.event == ev {
			out = append(out, r.uploaded)
		}
	}
	return out
}

// events counts the announces of ih (hex) with event ev ("" for regular ones).
func (tr *tracker) events(ih, ev string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.got {
		if r.ih == ih && r.event == ev {
			n++
		}
	}
	return n
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// payload writes size deterministic bytes (seeded by name) to path.
func payload(t *testing.T, path, name string, size int) {
	t.Helper()
	b := make([]byte, size)
	seed := sha1.Sum([]byte(name))
	for i := range b {
		b[i] = seed[i%len(seed)] ^ byte(i/len(seed))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeTorrent writes dataDir/name (64 KiB) and returns the bytes of its .torrent (16 KiB
// pieces) announcing to trackerURL ("" for none).
func makeTorrent(t *testing.T, dataDir, name, trackerURL string) ([]byte, bittorrent.InfoHash) {
	t.Helper()
	p := filepath.Join(dataDir, name)
	payload(t, p, name, 64<<10)
	o := metafile.MakeOptions{Paths: []string{p}, PieceLength: 16 << 10, NoDate: true, Workers: 1}
	if trackerURL != "" {
		o.Trackers = [][]string{{trackerURL}}
	}
	m, err := metafile.Make(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return m.Torrent, m.InfoHash
}

// publish makes dir/name and dir/name.torrent (the publish layout) and returns the
// info-hash in hex.
func publish(t *testing.T, dir, name, trackerURL string) string {
	t.Helper()
	b, ih := makeTorrent(t, dir, name, trackerURL)
	if err := os.WriteFile(filepath.Join(dir, name+".torrent"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return ih.String()
}

// testConfig is a Config on loopback with quick timers.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	var id bittorrent.PeerID
	copy(id[:], "-WS0100-agenttest0000")
	return Config{
		Dir:            dir,
		StateDir:       t.TempDir(),
		Listen:         "127.0.0.1:0",
		PeerID:         id,
		RetryInterval:  50 * time.Millisecond,
		RescanInterval: time.Hour,
		IdleTimeout:    time.Hour,
		AnnounceRate:   1000,
		Logger:         quiet(),
		Version:        "test",
	}
}

// running is an Agent whose Run goes on in the background.
type running struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and returns how long it took (0 when already stopped).
func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	if r.cancel == nil {
		return 0
	}
	begin := time.Now()
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return 15 s after cancel")
	}
	return time.Since(begin)
}

// waitState waits until the torrent ih (hex) is in state s.
func (r *running) waitState(t *testing.T, ih string, s State) TorrentInfo {
	t.Helper()
	var last TorrentInfo
	waitUntil(t, fmt.Sprintf("%s in state %s", ih, s), func() bool {
		for _, ti := range r.List() {
			if ti.InfoHash == ih {
				last = ti
				return ti.State == s
			}
		}
		return false
	})
	return last
}

// waitGone waits until ih (hex) is not listed.
func (r *running) waitGone(t *testing.T, ih string) {
	t.Helper()
	waitUntil(t, ih+" gone", func() bool {
		for _, ti := range r.List() {
			if ti.InfoHash == ih {
				return false
			}
		}
		return true
	})
}

func mustHash(t *testing.T, h string) bittorrent.InfoHash {
	t.Helper()
	ih, err := bittorrent.ParseInfoHash(h)
	if err != nil {
		t.Fatal(err)
	}
	return ih
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// dialTorrent connects to the agent as a peer for ih and closes the connection after the
// handshake.
func dialTorrent(addr net.Addr, ih bittorrent.InfoHash) error {
	var id bittorrent.PeerID
	copy(id[:], "-XX0000-dialer000000")
	cfg := &wire.Config{PeerID: id, Reserved: wire.DefaultReserved, Encryption: wire.Prefer}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, &net.Dialer{}, addr.String(), cfg, ih)
	if err != nil {
		return err
	}
	return c.Close()
}
