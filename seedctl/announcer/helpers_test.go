package announcer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/httpapi"
	"github.com/webswarm/webswarm/tracker/swarm"
	"github.com/webswarm/webswarm/tracker/udpapi"
)

// realTracker is the project's tracker (core, HTTP and UDP frontends) served in-process
// on loopback, with a log of the HTTP announces it received.
type realTracker struct {
	core    *announce.Tracker
	HTTP    string // announce URL
	UDP     string // udp://host:port
	udpAddr netip.AddrPort

	mu   sync.Mutex
	reqs []recorded
}

// recorded is one HTTP request a test server saw.
type recorded struct {
	at    time.Time
	path  string
	query string
	q     url.Values
}

func (r recorded) event() string { return r.q.Get("event") }

// startTracker serves a tracker with policy cfg on 127.0.0.1 (host "::1" for IPv6).
func startTracker(t *testing.T, host string, cfg announce.Config) *realTracker {
	t.Helper()
	store, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Logger = quietLogger()
	core, err := announce.New(cfg, store, announce.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		core.Close()
		store.Close()
	})
	h, err := httpapi.New(httpapi.Config{Tracker: core, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rt := &realTracker{core: core}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("no %s: %v", host, err))
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.record(r)
		h.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	rt.HTTP = srv.URL + "/announce"

	rt.udpAddr = serveUDP(t, host, core, udpapi.Config{})
	rt.UDP = "udp://" + rt.udpAddr.String()
	return rt
}

// serveUDP serves core's BEP 15 frontend with cfg on host:0 until the test ends.
func serveUDP(t *testing.T, host string, core *announce.Tracker, cfg udpapi.Config) netip.AddrPort {
	t.Helper()
	cfg.Logger, cfg.Workers = quietLogger(), 1
	u, err := udpapi.New(cfg, core, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- u.Serve(pc) }()
	t.Cleanup(func() {
		u.Close()
		if err := <-done; !errors.Is(err, udpapi.ErrServerClosed) {
			t.Errorf("UDP Serve: %v", err)
		}
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (rt *realTracker) record(r *http.Request) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.reqs = append(rt.reqs, recorded{at: time.Now(), path: r.URL.Path, query: r.URL.RawQuery, q: r.URL.Query()})
}

// announces returns the announces received so far.
func (rt *realTracker) announces() []recorded {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []recorded
	for _, r := range rt.reqs {
		if r.path == "/announce" {
			out = append(out, r)
		}
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testConfig is a Config for tests: fast UDP retransmission and back-off, distinct IDs.
func testConfig(tiers [][]string, ih bittorrent.InfoHash, n int) Config {
	var id bittorrent.PeerID
	copy(id[:], fmt.Sprintf("-WS0001-test%08d", n))
	return Config{
		Tiers:    tiers,
		InfoHash: ih,
		PeerID:   id,
		Port:     uint16(40000 + n),
		Progress: func() Progress { return Progress{Left: 1000} },
		Timeout:  5 * time.Second,
		// Tests count the datagrams a tracker saw: a first wait short enough to keep the
		// lost-reply tests quick, long enough that a loaded machine's slow reply is not
		// retransmitted for (100 ms was, in a CI run: one connect too many).
		UDPTimeout: 750 * time.Millisecond,
		UDPRetries: 4,
		Backoff:    100 * time.Millisecond,
		Logger:     quietLogger(),
	}
}

// runAnnouncer starts a.Run and stops it at cleanup.
func runAnnouncer(t *testing.T, a *Announcer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
}

func mustNew(t *testing.T, cfg Config) *Announcer {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitPeers waits until a has delivered a batch containing want, collecting batches.
func waitPeers(t *testing.T, a *Announcer, want netip.AddrPort, timeout time.Duration) []netip.AddrPort {
	t.Helper()
	deadline := time.After(timeout)
	var all []netip.AddrPort
	for {
		select {
		case batch, ok := <-a.Peers():
			if !ok {
				t.Fatalf("Peers closed before %v came; got %v", want, all)
			}
			all = append(all, batch...)
			for _, p := range batch {
				if p == want {
					return all
				}
			}
		case <-deadline:
			t.Fatalf("no peer %v after %v; got %v, status %+v", want, timeout, all, a.Status())
		}
	}
}

func hash(s string) bittorrent.InfoHash {
	var ih bittorrent.InfoHash
	copy(ih[:], s)
	return ih
}

// udpRelay forwards datagrams between one client and a UDP tracker, letting a test drop or
// alter the tracker's replies. It counts the client's requests by BEP 15 action.
type udpRelay struct {
	front, back *net.UDPConn
	// mangle returns the datagrams to forward for the i-th reply (0-based); nil forwards it
	// unchanged.
	mangle func(i int, pkt []byte) [][]byte

	mu       sync.Mutex
	client   netip.AddrPort
	actions  map[uint32]int
	replies  int
	upstream netip.AddrPort
	wg       sync.WaitGroup
}

func startRelay(t *testing.T, upstream netip.AddrPort, mangle func(int, []byte) [][]byte) *udpRelay {
	t.Helper()
	front, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(upstream.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(upstream.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRelay{front: front, back: back, mangle: mangle, actions: map[uint32]int{}, upstream: upstream}
	r.wg.Add(2)
	go r.forward()
	go r.backward()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		r.wg.Wait()
	})
	return r
}

func (r *udpRelay) URL() string { return "udp://" + r.front.LocalAddr().String() }

// setUpstream points the relay at another tracker socket.
func (r *udpRelay) setUpstream(a netip.AddrPort) {
	r.mu.Lock()
	r.upstream = a
	r.mu.Unlock()
}

func (r *udpRelay) count(action uint32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.actions[action]
}

func (r *udpRelay) forward() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.client = from
		if n >= 12 {
			r.actions[binary.BigEndian.Uint32(buf[8:])]++
		}
		up := r.upstream
		r.mu.Unlock()
		r.back.WriteToUDPAddrPort(buf[:n], up)
	}
}

func (r *udpRelay) backward() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := r.back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		i := r.replies
		r.replies++
		client := r.client
		r.mu.Unlock()
		pkts := [][]byte{buf[:n]}
		if r.mangle != nil {
			if m := r.mangle(i, append([]byte(nil), buf[:n]...)); m != nil {
				pkts = m
			}
		}
		for _, p := range pkts {
			if len(p) > 0 {
				r.front.WriteToUDPAddrPort(p, client)
			}
		}
	}
}

// fakeHTTP is a small tracker stand-in for replies the real tracker never sends. reply
// returns the status and body for the i-th request (0-based).
type fakeHTTP struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

func startFake(t *testing.T, reply func(i int, q url.Values) (int, string)) *fakeHTTP {
	t.Helper()
	f := &fakeHTTP{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		i := len(f.got)
		f.got = append(f.got, recorded{at: time.Now(), path: r.URL.Path, query: r.URL.RawQuery, q: r.URL.Query()})
		f.mu.Unlock()
		code, body := reply(i, r.URL.Query())
		w.WriteHeader(code)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHTTP) URL() string { return f.srv.URL + "/announce" }

func (f *fakeHTTP) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

// startFakeHandler serves h on loopback until the test ends and returns its base URL.
func startFakeHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

type netipAddrPort = netip.AddrPort

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// waitRequests polls until count reaches n. With nudge set, it asks nudge for an early
// announce at each poll (sent once the tracker's min interval allows).
func waitRequests(t *testing.T, what string, n int, count func() int, nudge *Announcer) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, func() error {
		if nudge != nil {
			nudge.Announce()
		}
		if got := count(); got < n {
			return fmt.Errorf("%d requests, want %d", got, n)
		}
		return nil
	})
}
