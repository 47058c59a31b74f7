package rtc

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/swarm"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newTransport(t testing.TB, cfg Config) *Transport {
	t.Helper()
	if !cfg.Bind.IsValid() {
		cfg.Bind = loopback
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// pair connects a (offering) to b (answering) and returns both ends.
func pair(t testing.TB, a, b *Transport) (net.Conn, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := a.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ans, wait, err := b.Answer(ctx, o.SDP)
	if err != nil {
		o.Close()
		t.Fatal(err)
	}
	var bc net.Conn
	var berr error
	done := make(chan struct{})
	go func() { defer close(done); bc, berr = wait(ctx) }()
	ac, err := o.Connect(ctx, ans)
	<-done
	if err != nil || berr != nil {
		t.Fatalf("connect: offerer %v, answerer %v", err, berr)
	}
	return ac, bc
}

// TestStream sends 4 MiB each way through one data channel, in writes larger than a
// message, and reads them back in small reads: a byte stream, not messages.
func TestStream(t *testing.T) {
	a, b := newTransport(t, Config{}), newTransport(t, Config{})
	ac, bc := pair(t, a, b)
	defer ac.Close()
	defer bc.Close()
	if ra, ok := bc.RemoteAddr().(*net.UDPAddr); !ok || !ra.IP.IsLoopback() {
		t.Errorf("RemoteAddr %v, want the peer's loopback UDP address", bc.RemoteAddr())
	}
	const size = 4 << 20
	for _, dir := range []struct {
		name string
		w, r net.Conn
	}{{"offerer to answerer", ac, bc}, {"answerer to offerer", bc, ac}} {
		want := make([]byte, size)
		rand.Read(want)
		werr := make(chan error, 1)
		go func() {
			var err error
			for p := want; len(p) > 0 && err == nil; p = p[min(len(p), 100_000):] {
				_, err = dir.w.Write(p[:min(len(p), 100_000)])
			}
			werr <- err
		}()
		dir.r.SetReadDeadline(time.Now().Add(60 * time.Second))
		got := make([]byte, 0, size)
		buf := make([]byte, 1000)
		for len(got) < size {
			n, err := dir.r.Read(buf)
			if err != nil {
				t.Fatalf("%s: read after %d bytes: %v", dir.name, len(got), err)
			}
			got = append(got, buf[:n]...)
		}
		if err := <-werr; err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: bytes differ", dir.name)
		}
	}
}

// TestReadDeadline: the session's idle timeouts rely on it.
func TestReadDeadline(t *testing.T) {
	ac, bc := pair(t, newTransport(t, Config{}), newTransport(t, Config{}))
	defer ac.Close()
	defer bc.Close()
	bc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := bc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing sent: %v, want a deadline error", err)
	}
}

// TestCloseEndsPeer: closing one end ends the other's reads.
func TestCloseEndsPeer(t *testing.T) {
	ac, bc := pair(t, newTransport(t, Config{}), newTransport(t, Config{}))
	defer bc.Close()
	ac.Close()
	bc.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := bc.Read(make([]byte, 10))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the peer closed: %v, want the end of the stream", err)
	}
}

// TestProcessCaps: the process's waiting offers and its peers have separate bounds (an
// offer waiting holds no peer slot), an answered offer needs a peer slot, and a slot comes
// back when its PeerConnection closes.
func TestProcessCaps(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newTransport(t, Config{MaxPeers: 1, MaxOffers: 2, Metrics: NewMetrics(reg)})
	other := newTransport(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o1, err := tr.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := tr.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	if _, err := tr.Offer(ctx); !errors.Is(err, ErrOfferCap) {
		t.Fatalf("third offer: %v, want ErrOfferCap", err)
	}
	// Two offers wait, yet the process answers a peer's offer: offers are not peers.
	theirs, err := other.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	_, wait, err := tr.Answer(ctx, theirs.SDP)
	if err != nil {
		t.Fatalf("answer with two offers waiting: %v", err)
	}
	if _, _, err := tr.Answer(ctx, theirs.SDP); !errors.Is(err, ErrProcessCap) {
		t.Fatalf("answer over the peer cap: %v, want ErrProcessCap", err)
	}
	// An answer to our offer needs a peer slot too: none is free, so the offer closes.
	ans, wait2, err := other.Answer(ctx, o1.SDP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o1.Connect(ctx, ans); !errors.Is(err, ErrProcessCap) {
		t.Fatalf("connect over the peer cap: %v, want ErrProcessCap", err)
	}
	if got := testutil.ToFloat64(tr.cfg.Metrics.refused.WithLabelValues("process_cap")); got != 2 {
		t.Errorf("refused{process_cap} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(tr.cfg.Metrics.refused.WithLabelValues("offer_cap")); got != 1 {
		t.Errorf("refused{offer_cap} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(tr.cfg.Metrics.peers); got != 2 {
		t.Errorf("peer connections gauge = %v, want 2 (one offer, one answer)", got)
	}
	o1.Close() // closed already: frees nothing twice
	o3, err := tr.Offer(ctx)
	if err != nil {
		t.Fatalf("offer after one closed: %v", err)
	}
	if _, err := tr.Offer(ctx); !errors.Is(err, ErrOfferCap) {
		t.Fatalf("offer over the cap after a double close: %v", err)
	}
	o3.Close()
	// The answer that never connects gives its peer slot back.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := wait(cctx); err == nil {
		t.Fatal("wait with an ended context connected")
	}
	if _, err := wait2(cctx); err == nil {
		t.Fatal("wait with an ended context connected")
	}
	o2.Close()
	if got := testutil.ToFloat64(tr.cfg.Metrics.peers); got != 0 {
		t.Errorf("peer connections gauge = %v after closing all, want 0", got)
	}
}

// TestPortRange: ICE binds only ports of the range given.
func TestPortRange(t *testing.T) {
	lo := testenv.FreePort(t, "127.0.0.1")
	if lo > 65000 {
		t.Skip("free port too high for a range")
	}
	tr := newTransport(t, Config{PortMin: uint16(lo), PortMax: uint16(lo + 5)})
	o, err := tr.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	n := 0
	for _, line := range strings.Split(o.SDP.SDP, "\n") {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		f := strings.Fields(line)
		var port int
		fmt.Sscan(f[5], &port)
		if f[4] != "127.0.0.1" || port < lo || port > lo+5 {
			t.Errorf("candidate %s:%d outside 127.0.0.1:%d-%d", f[4], port, lo, lo+5)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no candidate in the offer:\n%s", o.SDP.SDP)
	}
}

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi uint16
		bad    bool
	}{
		{"", 0, 0, false},
		{"50000-50100", 50000, 50100, false},
		{"6881", 6881, 6881, false},
		{"50100-50000", 0, 0, true},
		{"0-10", 0, 0, true},
		{"1-70000", 0, 0, true},
		{"a-b", 0, 0, true},
	} {
		lo, hi, err := ParsePorts(tc.in)
		if (err != nil) != tc.bad || lo != tc.lo || hi != tc.hi {
			t.Errorf("ParsePorts(%q) = %d, %d, %v", tc.in, lo, hi, err)
		}
	}
	if _, err := NewTransport(Config{STUN: []string{"http://x"}}); err == nil || !strings.Contains(err.Error(), "http://x") {
		t.Errorf("bad STUN URL: %v, want an error naming it", err)
	}
}

// newTracker serves our tracker's WebSocket frontend on loopback and returns its URL.
func newTracker(t testing.TB, cfg wsapi.Config) string {
	t.Helper()
	_, url := newTrackerServer(t, cfg)
	return url
}

// newTrackerServer serves our tracker's WebSocket frontend on loopback, and returns it.
func newTrackerServer(t testing.TB, cfg wsapi.Config) (*wsapi.Server, string) {
	t.Helper()
	s, err := wsapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeWebSocket(w, r, loopback)
	}))
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http") + "/announce"
}

// conns collects the connections a Client hands over.
type conns struct {
	mu  sync.Mutex
	all []net.Conn
	out int
}

func (c *conns) handle(nc net.Conn, outgoing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, nc)
	if outgoing {
		c.out++
	}
}

// exchange waits for a connection on both sides and checks that msg, written to the
// seeder's first, is read from the leecher's first.
func exchange(t *testing.T, seeder, leecher *conns, msg string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "a connection on both sides", func() error {
		s, sout := seeder.count()
		l, lout := leecher.count()
		if s == 0 || l == 0 || sout+lout == 0 {
			return fmt.Errorf("seeder %d, leecher %d (%d outgoing)", s, l, sout+lout)
		}
		return nil
	})
	seeder.mu.Lock()
	sc := seeder.all[0]
	seeder.mu.Unlock()
	leecher.mu.Lock()
	lc := leecher.all[0]
	leecher.mu.Unlock()
	go sc.Write([]byte(msg))
	lc.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(lc, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v", got, err)
	}
}

func (c *conns) count() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.all), c.out
}

func (c *conns) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nc := range c.all {
		nc.Close()
	}
}

func peerID(tag string) bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], "-WS0001-"+tag+strings.Repeat("x", 20))
	return id
}

func runClient(t testing.TB, cfg ClientConfig) (*Client, func()) {
	t.Helper()
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cl.Run(ctx) }()
	return cl, func() { cancel(); <-done }
}

// TestClientsMeetThroughTracker: two clients of one torrent, speaking to our tracker's
// WebSocket frontend, connect: the second one's offers reach the first, which answers, and
// bytes flow over the connection each was handed.
func TestClientsMeetThroughTracker(t *testing.T) {
	url := newTracker(t, wsapi.Config{})
	ih := bittorrent.InfoHash{1, 2, 3, 0xff, 0x80}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var seeder, leecher conns
	_, stopSeeder := runClient(t, ClientConfig{URL: url, InfoHash: ih, PeerID: peerID("seed"),
		Transport: newTransport(t, Config{Metrics: m}), HandleConn: seeder.handle, Offers: 1})
	defer stopSeeder()
	defer seeder.closeAll()
	// Whichever announces second has its offers relayed to the other, which answers.
	_, stopLeecher := runClient(t, ClientConfig{URL: url, InfoHash: ih, PeerID: peerID("leech"),
		Transport: newTransport(t, Config{}), HandleConn: leecher.handle, Left: func() int64 { return 1 }, Offers: 2})
	defer stopLeecher()
	defer leecher.closeAll()
	exchange(t, &seeder, &leecher, "hello browser")
	if n := testutil.ToFloat64(m.opened.WithLabelValues("incoming")) + testutil.ToFloat64(m.opened.WithLabelValues("outgoing")); n < 1 {
		t.Errorf("connections_total = %v on the seeder", n)
	}
}

// TestClientAnnouncesCompleted: a client whose download completes says so to the tracker at
// once (event "completed", left 0), not at its next re-announce minutes later: the tracker
// counts it as a seeder and counts the completion.
func TestClientAnnouncesCompleted(t *testing.T) {
	ws, url := newTrackerServer(t, wsapi.Config{})
	ih := bittorrent.InfoHash{7, 7, 7}
	var left atomic.Int64
	left.Store(1 << 20)
	cl, stop := runClient(t, ClientConfig{URL: url, InfoHash: ih, PeerID: peerID("done"),
		Transport: newTransport(t, Config{}), HandleConn: func(nc net.Conn, _ bool) { nc.Close() },
		Left: left.Load, Offers: 1})
	defer stop()
	waitCounts := func(want swarm.Counts) {
		t.Helper()
		testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("the tracker's counts %+v", want), func() error {
			if got, _ := ws.Counts(ih); got != want {
				return fmt.Errorf("counts %+v", got)
			}
			return nil
		})
	}
	waitCounts(swarm.Counts{Incomplete: 1})
	left.Store(0)
	cl.Completed()
	waitCounts(swarm.Counts{Complete: 1, Downloaded: 1})
}
