package session

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// webServer serves the fixture's payload (Range support from http.ServeContent) through
// handler hooks, counting requests and body bytes.
type webServer struct {
	srv      *httptest.Server
	f        *fixture
	requests atomic.Int64
	bytes    atomic.Int64
	// serve, when set, answers instead of ServeContent; n is the request's number from 1.
	serve func(w http.ResponseWriter, r *http.Request, n int64) bool
	delay time.Duration
}

func newWebServer(tb testing.TB, f *fixture) *webServer {
	ws := &webServer{f: f}
	ws.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ws.requests.Add(1)
		if ws.delay > 0 {
			time.Sleep(ws.delay)
		}
		if ws.serve != nil && ws.serve(w, r, n) {
			return
		}
		if r.URL.Path != "/"+f.mi.Name {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(&countWriter{ResponseWriter: w, n: &ws.bytes}, r, f.mi.Name, time.Time{}, bytes.NewReader(f.payload))
	}))
	tb.Cleanup(ws.srv.Close)
	return ws
}

// url is the web seed URL of the fixture's single file.
func (ws *webServer) url() string { return ws.srv.URL + "/" + ws.f.mi.Name }

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// leechWith starts a Torrent with nothing, using the web seeds given.
func leechWith(t *testing.T, f *fixture, tag byte, webSeeds ...string) (*node, string) {
	t.Helper()
	lf, dir := f.leechFiles(t)
	n := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: tag,
		cfg:   func(c *Config) { c.WebSeeds = webSeeds },
		tweak: func(t *Torrent) { t.webBackoff = 10 * time.Millisecond }})
	return n, dir
}

func TestWebSeedAlone(t *testing.T) {
	f := newFixture(t, 5<<20+4321, 64<<10)
	web := newWebServer(t, f)
	leech, dir := leechWith(t, f, 'l', web.url())
	waitDone(t, leech.t, 30*time.Second)
	checkPayload(t, dir, f)
	st := leech.t.Stats()
	if st.Downloaded != int64(len(f.payload)) || st.Left != 0 || st.HashFails != 0 {
		t.Errorf("stats after a download from the web seed alone: %+v", st)
	}
	if got := counter(leech.metrics, "webseed_bytes", ""); got != float64(len(f.payload)) {
		t.Errorf("web seed bytes metric %v, payload is %d", got, len(f.payload))
	}
	// Whole pieces, at least a MiB a request (the last run may be shorter).
	if n, max := web.requests.Load(), int64(len(f.payload)/minRunBytes+1); n > max {
		t.Errorf("%d requests for %d bytes: runs smaller than %d bytes", n, len(f.payload), minRunBytes)
	}
}

func TestWebSeedAndPeer(t *testing.T) {
	f := newFixture(t, 8<<20+999, 64<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		cfg: func(c *Config) { c.TorrentUploadRate = 2 << 20 }})
	web := newWebServer(t, f)
	// The web seed's first runs take at least this long, so the peer has time to deliver.
	web.delay = 200 * time.Millisecond
	leech, dir := leechWith(t, f, 'l', web.url())
	leech.t.AddPeers([]netip.AddrPort{seed.addr})
	waitDone(t, leech.t, 30*time.Second)
	checkPayload(t, dir, f)
	fromWeb := int64(counter(leech.metrics, "webseed_bytes", ""))
	fromPeer := seed.t.Stats().Uploaded
	if fromWeb == 0 || fromPeer == 0 {
		t.Fatalf("both should contribute: web seed %d bytes, peer %d bytes", fromWeb, fromPeer)
	}
	if fromWeb+fromPeer < int64(len(f.payload)) {
		t.Errorf("web seed %d + peer %d bytes < payload %d", fromWeb, fromPeer, len(f.payload))
	}
	t.Logf("web seed %d bytes, peer %d bytes", fromWeb, fromPeer)
}

// TestWebSeedDropped: web seeds that cannot serve the torrent are dropped with their reason
// while a peer completes the download; a flaky one is retried and used.
func TestWebSeedDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string // "" = not dropped
		serve  func(f *fixture) func(w http.ResponseWriter, r *http.Request, n int64) bool
	}{
		{"not found", WebSeedNotFound, func(*fixture) func(http.ResponseWriter, *http.Request, int64) bool {
			return func(w http.ResponseWriter, r *http.Request, _ int64) bool { http.NotFound(w, r); return true }
		}},
		{"ignores Range on a big file", WebSeedNoRange, func(f *fixture) func(http.ResponseWriter, *http.Request, int64) bool {
			return func(w http.ResponseWriter, _ *http.Request, _ int64) bool {
				w.Header().Set("Content-Length", fmt.Sprint(len(f.payload)))
				w.WriteHeader(http.StatusOK)
				w.Write(f.payload)
				return true
			}
		}},
		{"bad data", WebSeedBadData, func(f *fixture) func(http.ResponseWriter, *http.Request, int64) bool {
			bad := bytes.Clone(f.payload)
			for i := range bad {
				if i%(64<<10) == 100 {
					bad[i] ^= 0xff // a wrong byte in every piece
				}
			}
			return func(w http.ResponseWriter, r *http.Request, _ int64) bool {
				http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(bad))
				return true
			}
		}},
		{"always failing", WebSeedErrors, func(*fixture) func(http.ResponseWriter, *http.Request, int64) bool {
			return func(w http.ResponseWriter, _ *http.Request, _ int64) bool {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return true
			}
		}},
		{"flaky", "", func(*fixture) func(http.ResponseWriter, *http.Request, int64) bool {
			return func(w http.ResponseWriter, _ *http.Request, n int64) bool {
				if n <= 2 {
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return true
				}
				return false
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 5<<20+77, 64<<10)
			web := newWebServer(t, f)
			web.serve = tc.serve(f)
			leech, dir := leechWith(t, f, 'l', web.url())
			if tc.reason != "" {
				// Alone, the leecher must give the seed up (and fetch nothing).
				waitCounter(t, leech.metrics, "webseed_dropped", tc.reason, 1)
				seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
				leech.t.AddPeers([]netip.AddrPort{seed.addr})
			}
			waitDone(t, leech.t, 30*time.Second)
			checkPayload(t, dir, f)
			for _, r := range webSeedDropReasons {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got := counter(leech.metrics, "webseed_dropped", r); got != want {
					t.Errorf("dropped{reason=%q} = %v, want %v", r, got, want)
				}
			}
			if tc.reason == WebSeedBadData && leech.t.Stats().HashFails == 0 {
				t.Errorf("bad pieces from the web seed were not counted as hash failures")
			}
			if tc.reason == "" && counter(leech.metrics, "webseed_bytes", "") != float64(len(f.payload)) {
				t.Errorf("the flaky web seed delivered %v bytes, want all %d", counter(leech.metrics, "webseed_bytes", ""), len(f.payload))
			}
		})
	}
}

// TestWebSeedBadURL: a URL the web seed client refuses is skipped and counted; the torrent
// still runs.
func TestWebSeedBadURL(t *testing.T) {
	f := newFixture(t, 1<<20, 64<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	leech, dir := leechWith(t, f, 'l', "ftp://example.invalid/x", "not a url")
	if got := counter(leech.metrics, "webseed_dropped", WebSeedBadURL); got != 2 {
		t.Errorf("dropped{reason=bad_url} = %v, want 2", got)
	}
	leech.t.AddPeers([]netip.AddrPort{seed.addr})
	waitDone(t, leech.t, 30*time.Second)
	checkPayload(t, dir, f)
}

// TestWebSeedStopsWithRun: Run returns promptly while a web seed stalls mid-request.
func TestWebSeedStopsWithRun(t *testing.T) {
	f := newFixture(t, 2<<20, 64<<10)
	stalled := make(chan struct{})
	web := newWebServer(t, f)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	web.serve = func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 1 {
			close(stalled)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	lf, _ := f.leechFiles(t)
	tor, err := New(f.mi, lf, wire.Bitfield{}, Config{PeerID: peerID('l'), WebSeeds: []string{web.url()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tor.Run(ctx) }()
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the web seed was never asked")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of its context's end while a web seed stalled")
	}
	if st := tor.Stats(); st.Have != 0 || st.Downloaded != 0 {
		t.Errorf("stats after a stalled web seed: %+v", st)
	}
}

// TestWebSeedStalledPeerFinishes: a web seed that never answers holds its runs only until a
// peer that has their pieces runs out of other work; the peer finishes the download and the
// web seed is not blamed (it may just be slow).
func TestWebSeedStalledPeerFinishes(t *testing.T) {
	f := newFixture(t, 4<<20, 64<<10)
	web := newWebServer(t, f)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	web.serve = func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	finishBesideSlowWebSeed(t, f, web)
	if web.requests.Load() == 0 {
		t.Error("the web seed was never asked")
	}
}

// TestWebSeedAbandonedRunKeepsItsPieces: a web seed that delivers half of a run and then
// stalls has the run abandoned to a peer; the whole pieces it delivered are checked and kept,
// and the peer is asked only for the rest.
func TestWebSeedAbandonedRunKeepsItsPieces(t *testing.T) {
	f := newFixture(t, 4<<20, 64<<10)
	web := newWebServer(t, f)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	const half = 512 << 10 // of the first run (1 MiB: the seed's rate is not known yet)
	web.serve = func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 1 {
			var first, last int
			fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last)
			if last-first+1 < half {
				t.Errorf("first run of %d bytes", last-first+1)
				return false
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(f.payload)))
			w.Header().Set("Content-Length", strconv.Itoa(last-first+1))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(f.payload[first : first+half])
			w.(http.Flusher).Flush()
		}
		select { // then stall
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	seed, leech := finishBesideSlowWebSeed(t, f, web)
	if got := counter(leech.metrics, "webseed_bytes", ""); got < half {
		t.Errorf("%v bytes kept from the web seed, want at least %d", got, half)
	}
	if up := seed.t.Stats().Uploaded; up > int64(len(f.payload)-half) {
		t.Errorf("the peer uploaded %d bytes: the web seed's %d were fetched again", up, half)
	}
}

// finishBesideSlowWebSeed downloads f with web as web seed and a seed peer beside it, well
// within runTimeout (so only abandoning the web seed's runs lets the peer finish in time),
// and checks the payload and that the web seed was not dropped: a slow one is not a bad one.
func finishBesideSlowWebSeed(t *testing.T, f *fixture, web *webServer) (seed, leech *node) {
	t.Helper()
	seed = startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	leech, dir := leechWith(t, f, 'l', web.url())
	leech.t.AddPeers([]netip.AddrPort{seed.addr})
	waitDone(t, leech.t, 30*time.Second)
	checkPayload(t, dir, f)
	for _, r := range webSeedDropReasons {
		if got := counter(leech.metrics, "webseed_dropped", r); got != 0 {
			t.Errorf("dropped{reason=%q} = %v: a slow web seed is not a bad one", r, got)
		}
	}
	return seed, leech
}
