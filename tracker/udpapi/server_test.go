package udpapi

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/tracker/announce"
)

var loopback4 = netip.MustParseAddr("127.0.0.1")

// TestAnnounceScrape walks a swarm through connect, announce and scrape over a real socket:
// each step's reply must show the counts after it and the peers it may be given.
func TestAnnounceScrape(t *testing.T) {
	f := serve(t, "127.0.0.1", Config{})
	clients := make([]*client, 4)
	for i := range clients {
		clients[i] = newClient(t, f.addr)
		clients[i].connect()
	}
	addrOf := func(i int) netip.AddrPort { return netip.AddrPortFrom(loopback4, 7000+uint16(i)) }
	steps := []struct {
		name              string
		who               int
		a                 ann
		seeders, leechers uint32
		peers             []int // clients whose addresses come back, in any order
	}{
		{"first seeder gets nobody", 0, ann{ih: 1, id: 'a', event: 2, numWant: -1}, 1, 0, nil},
		{"leecher gets the seeder", 1, ann{ih: 1, id: 'b', left: 100, event: 2, numWant: -1}, 1, 1, []int{0}},
		{"second leecher gets both", 2, ann{ih: 1, id: 'c', left: 100, event: 2, numWant: 50}, 1, 2, []int{0, 1}},
		{"seeder gets no seeders", 3, ann{ih: 1, id: 'd', event: 2, numWant: -1}, 2, 2, []int{1, 2}},
		{"num_want 1 caps the list", 1, ann{ih: 1, id: 'b', left: 100, numWant: 1}, 2, 2, nil},
		{"num_want 0 gives none", 1, ann{ih: 1, id: 'b', left: 100}, 2, 2, []int{}},
		{"completed makes a seeder", 2, ann{ih: 1, id: 'c', event: 1, numWant: 0}, 3, 1, []int{}},
		{"stopped leaves", 3, ann{ih: 1, id: 'd', event: 3, numWant: -1}, 2, 1, []int{}},
		{"another torrent is apart", 0, ann{ih: 2, id: 'a', left: 5, event: 2, numWant: -1}, 0, 1, nil},
	}
	for _, st := range steps {
		c := clients[st.who]
		st.a.port = addrOf(st.who).Port()
		tx := c.nextTx()
		r := decodeAnnounce(t, c.roundTrip(st.a.packet(c.connID, tx)), tx, 6)
		if r.seeders != st.seeders || r.leechers != st.leechers {
			t.Errorf("%s: seeders %d leechers %d, want %d %d", st.name, r.seeders, r.leechers, st.seeders, st.leechers)
		}
		if r.interval != 1800 {
			t.Errorf("%s: interval %d, want 1800", st.name, r.interval)
		}
		if st.name == "num_want 1 caps the list" {
			if len(r.peers) != 1 {
				t.Errorf("%s: %d peers", st.name, len(r.peers))
			}
			continue
		}
		var want []netip.AddrPort
		for _, i := range st.peers {
			want = append(want, addrOf(i))
		}
		got := slices.SortedFunc(slices.Values(r.peers), netip.AddrPort.Compare)
		if !slices.Equal(got, want) {
			t.Errorf("%s: peers %v, want %v", st.name, got, want)
		}
	}

	// Torrent 1: 2 seeders (a, c), 1 leecher (b), 1 completion; 3 is unknown.
	c := clients[0]
	tx := c.nextTx()
	r := c.roundTrip(scrapePacket(c.connID, tx, 1, 3, 2))
	checkHeader(t, r, actionScrape, tx)
	var got []uint32
	for p := r[8:]; len(p) >= 4; p = p[4:] {
		got = append(got, binary.BigEndian.Uint32(p))
	}
	want := []uint32{2, 1, 1, 0, 0, 0, 0, 0, 1}
	if !slices.Equal(got, want) {
		t.Errorf("scrape (seeders, completed, leechers)×3 = %v, want %v", got, want)
	}

	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"webswarm_tracker_udp_packets_total", map[string]string{"action": "connect", "outcome": "ok"}, 4},
		{"webswarm_tracker_udp_packets_total", map[string]string{"action": "announce", "outcome": "ok"}, float64(len(steps))},
		{"webswarm_tracker_udp_packets_total", map[string]string{"action": "scrape", "outcome": "ok"}, 1},
		{"webswarm_tracker_scrapes_total", map[string]string{"kind": "specific", "outcome": "ok"}, 1},
		{"webswarm_tracker_announces_total", map[string]string{"event": "started", "outcome": "ok"}, 5},
	} {
		if v := metricValue(t, f.reg, m.name, m.labels); v != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, v, m.want)
		}
	}
}

// TestKey: BEP 15's 32-bit key is the peer's key, so the same key may move a peer ID to a
// new address and another key may not.
func TestKey(t *testing.T) {
	f := serve(t, "127.0.0.1", Config{})
	c1, c2 := newClient(t, f.addr), newClient(t, f.addr)
	c1.connect()
	c2.connect()
	a := ann{ih: 1, id: 'k', left: 1, event: 2, key: 0xdeadbeef, port: 6881}
	tx := c1.nextTx()
	decodeAnnounce(t, c1.roundTrip(a.packet(c1.connID, tx)), tx, 6)

	a.port, a.key, a.event = 6882, 0x12345678, 0 // same peer ID, new port, other key
	tx = c2.nextTx()
	if msg := errorText(t, c2.roundTrip(a.packet(c2.connID, tx)), tx); !strings.Contains(msg, "peer_id") {
		t.Errorf("takeover with another key: %q", msg)
	}
	a.key = 0xdeadbeef
	tx = c2.nextTx()
	if r := decodeAnnounce(t, c2.roundTrip(a.packet(c2.connID, tx)), tx, 6); r.leechers != 1 {
		t.Errorf("move with the same key: %d leechers", r.leechers)
	}
}

// TestErrors sends bad requests; each must get an error packet with its reason (or, too
// short to hold a transaction ID, nothing) and be counted.
func TestErrors(t *testing.T) {
	// One worker, so that replies come back in the order the requests went out.
	f := serve(t, "127.0.0.1", Config{Workers: 1})
	c := newClient(t, f.addr)
	c.connect()
	good := ann{ih: 1, id: 'e', left: 1, port: 6881}
	tests := []struct {
		name    string
		packet  func(tx uint32) []byte
		reason  string // substring of the error text; "" for no reply
		action  string
		outcome string
	}{
		{"empty packet", func(uint32) []byte { return nil }, "", "unknown", "dropped"},
		{"15 bytes", func(tx uint32) []byte { return connectPacket(tx)[:15] }, "", "unknown", "dropped"},
		{"connect without protocol ID", func(tx uint32) []byte {
			p := connectPacket(tx)
			p[0] = 1
			return append(p, make([]byte, 50)...)
		}, "protocol ID", "connect", "failed"},
		{"unknown action", func(tx uint32) []byte {
			p := connectPacket(tx)
			binary.BigEndian.PutUint32(p[8:], 7)
			return append(p, make([]byte, 20)...)
		}, "unknown action", "unknown", "failed"},
		{"unverified error cut to the request's length", func(tx uint32) []byte {
			p := connectPacket(tx)
			binary.BigEndian.PutUint32(p[8:], 7)
			return p
		}, "unknown ", "unknown", "failed"},
		{"client sends an error", func(tx uint32) []byte {
			p := connectPacket(tx)
			binary.BigEndian.PutUint32(p[8:], actionError)
			return append(p, "whatever"...)
		}, "unknown action", "unknown", "failed"},
		{"bad connection ID", func(tx uint32) []byte { return good.packet(c.connID^1, tx) },
			"connection ID", "announce", "bad_connection_id"},
		{"scrape with a bad connection ID", func(tx uint32) []byte { return scrapePacket(c.connID+1, tx, 1) },
			"connection ID", "scrape", "bad_connection_id"},
		{"header-only scrape with a bad connection ID", func(tx uint32) []byte { return scrapePacket(c.connID+1, tx) },
			"bad conn", "scrape", "bad_connection_id"},
		{"short announce", func(tx uint32) []byte { return good.packet(c.connID, tx)[:97] },
			"shorter than 98 bytes", "announce", "failed"},
		{"header-only announce", func(tx uint32) []byte { return good.packet(c.connID, tx)[:16] },
			"shorter than 98 bytes", "announce", "failed"},
		{"unknown event", func(tx uint32) []byte {
			a := good
			a.event = 4
			return a.packet(c.connID, tx)
		}, "unknown event", "announce", "failed"},
		{"port 0", func(tx uint32) []byte {
			a := good
			a.port = 0
			return a.packet(c.connID, tx)
		}, "invalid port 0", "announce", "failed"},
		{"scrape of nothing", func(tx uint32) []byte { return scrapePacket(c.connID, tx) },
			"without an info_hash", "scrape", "failed"},
		{"scrape of 30 bytes", func(tx uint32) []byte { return scrapePacket(c.connID, tx, 1)[:46] },
			"multiple of 20", "scrape", "failed"},
		{"scrape of 75", func(tx uint32) []byte { return scrapePacket(c.connID, tx, repeat(1, 75)...) },
			"too many", "scrape", "failed"},
		{"scrape longer than the read buffer", func(tx uint32) []byte {
			return append(scrapePacket(c.connID, tx, repeat(1, 150)...), 1, 2, 3)
		}, "too many", "scrape", "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			labels := map[string]string{"action": tc.action, "outcome": tc.outcome}
			before := metricValue(t, f.reg, "webswarm_tracker_udp_packets_total", labels)
			tx := c.nextTx()
			if _, err := c.conn.Write(tc.packet(tx)); err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				// Nothing comes back: the next reply is the connect sent after it.
				ctx := c.nextTx()
				checkHeader(t, c.roundTrip(connectPacket(ctx)), actionConnect, ctx)
			} else if msg := errorText(t, c.read(), tx); !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q, want it to mention %q", msg, tc.reason)
			}
			if v := metricValue(t, f.reg, "webswarm_tracker_udp_packets_total", labels); v != before+1 {
				t.Errorf("%v counted %v times", labels, v-before)
			}
		})
	}
	for code, want := range map[string]float64{
		announce.CodeBadRequest: 6, announce.CodeBadEvent: 1, announce.CodeBadPort: 1,
		announce.CodeBadInfoHash: 2, announce.CodeTooManyHashes: 2,
	} {
		if v := metricValue(t, f.reg, "webswarm_tracker_failures_total", map[string]string{"reason": code}); v != want {
			t.Errorf("failures{reason=%s} = %v, want %v", code, v, want)
		}
	}
}

// TestConnIDLifetime moves the server's clock: an ID is good in its own period and the next,
// and refused after.
func TestConnIDLifetime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).Truncate(DefaultConnIDLifetime)
	var clock atomicTime
	clock.set(now)
	f := serve(t, "127.0.0.1", Config{}, func(s *Server) { s.now = clock.get })
	c := newClient(t, f.addr)
	c.connect()
	a := ann{ih: 1, id: 'l', left: 1, port: 6881}
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{
		{0, true},
		{DefaultConnIDLifetime - time.Second, true},
		{DefaultConnIDLifetime + time.Second, true}, // the previous period's ID
		{2*DefaultConnIDLifetime - time.Second, true},
		{2 * DefaultConnIDLifetime, false},
		{time.Hour, false},
	} {
		clock.set(now.Add(tc.after))
		tx := c.nextTx()
		r := c.roundTrip(a.packet(c.connID, tx))
		if ok := binary.BigEndian.Uint32(r) == actionAnnounce; ok != tc.ok {
			t.Errorf("%v after connect: accepted %v, want %v", tc.after, ok, tc.ok)
		}
	}
}

// TestIPv6 announces over ::1: the answer's peers are 18 bytes (BEP 15's IPv6 form), and
// an IPv4 swarm stays out of it.
func TestIPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no ::1: %v", err)
	}
	f := serveConn(t, pc, Config{})
	c1, c2 := newClient(t, f.addr), newClient(t, f.addr)
	c1.connect()
	c2.connect()
	tx := c1.nextTx()
	a := ann{ih: 6, id: 'x', left: 1, event: 2, numWant: -1, port: 6001, ip: [4]byte{10, 0, 0, 1}}
	if r := decodeAnnounce(t, c1.roundTrip(a.packet(c1.connID, tx)), tx, 18); len(r.peers) != 0 {
		t.Errorf("first peer got %v", r.peers)
	}
	tx = c2.nextTx()
	a = ann{ih: 6, id: 'y', left: 1, event: 2, numWant: -1, port: 6002}
	r := decodeAnnounce(t, c2.roundTrip(a.packet(c2.connID, tx)), tx, 18)
	want := []netip.AddrPort{netip.MustParseAddrPort("[::1]:6001")}
	if !slices.Equal(r.peers, want) || r.leechers != 2 {
		t.Errorf("peers %v, leechers %d; want %v, 2", r.peers, r.leechers, want)
	}
}

// TestIPOverride: the IP field is honoured only as Config.AllowIPOverride says.
func TestIPOverride(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow func(src, claimed netip.Addr) bool
		want  string
	}{
		{"no policy", nil, "127.0.0.1:6001"},
		{"refused", func(src, claimed netip.Addr) bool { return false }, "127.0.0.1:6001"},
		{"allowed", func(src, claimed netip.Addr) bool {
			return src == loopback4 && claimed == netip.MustParseAddr("10.1.2.3")
		}, "10.1.2.3:6001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := serve(t, "127.0.0.1", Config{AllowIPOverride: tc.allow})
			c1, c2 := newClient(t, f.addr), newClient(t, f.addr)
			c1.connect()
			c2.connect()
			tx := c1.nextTx()
			a := ann{ih: 4, id: 'o', left: 1, port: 6001, ip: [4]byte{10, 1, 2, 3}}
			decodeAnnounce(t, c1.roundTrip(a.packet(c1.connID, tx)), tx, 6)
			tx = c2.nextTx()
			a = ann{ih: 4, id: 'p', left: 1, port: 6002, numWant: -1}
			r := decodeAnnounce(t, c2.roundTrip(a.packet(c2.connID, tx)), tx, 6)
			if len(r.peers) != 1 || r.peers[0].String() != tc.want {
				t.Errorf("peers %v, want [%s]", r.peers, tc.want)
			}
		})
	}
}

// TestOptions: BEP 41 options after the announce (URLData, NOP, EndOfOptions — and
// malformed ones) do not disturb it.
func TestOptions(t *testing.T) {
	f := serve(t, "127.0.0.1", Config{})
	c := newClient(t, f.addr)
	c.connect()
	urlData := func(s string) []byte { return append([]byte{2, byte(len(s))}, s...) }
	for _, tc := range []struct {
		name string
		opts []byte
	}{
		{"URLData then end", append(urlData("/announce?passkey=x"), 0)},
		{"split URLData, NOP", slices.Concat(urlData("/ann"), []byte{1}, urlData("ounce"), []byte{0})},
		{"no EndOfOptions", urlData("/announce")},
		{"length past the end", []byte{2, 200, 'x'}},
		{"legacy 2-byte extensions field", []byte{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := c.nextTx()
			a := ann{ih: 5, id: 'u', left: 1, port: 6881}
			decodeAnnounce(t, c.roundTrip(append(a.packet(c.connID, tx), tc.opts...)), tx, 6)
		})
	}
}

func TestScrapeDisabled(t *testing.T) {
	f := serve(t, "127.0.0.1", Config{DisableScrape: true})
	c := newClient(t, f.addr)
	c.connect()
	tx := c.nextTx()
	if msg := errorText(t, c.roundTrip(scrapePacket(c.connID, tx, 1)), tx); !strings.Contains(msg, "disabled") {
		t.Errorf("error %q", msg)
	}
	if v := metricValue(t, f.reg, "webswarm_tracker_scrapes_total", map[string]string{"kind": "specific", "outcome": "failed"}); v != 1 {
		t.Errorf("failed scrapes = %v", v)
	}
}

// TestLatency: with a histogram passed in, each request is observed under frontend="udp".
func TestLatency(t *testing.T) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "webswarm_tracker_request_duration_seconds"},
		[]string{"frontend", "kind"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	f := serve(t, "127.0.0.1", Config{Latency: h, Workers: 1})
	c := newClient(t, f.addr)
	c.connect()
	tx := c.nextTx()
	decodeAnnounce(t, c.roundTrip(ann{ih: 1, id: 'h', port: 1}.packet(c.connID, tx)), tx, 6)
	// The observation follows the send: a second round trip orders it before the check.
	c.connect()
	for kind, want := range map[string]float64{"announce": 1, "other": 1} {
		if v := metricValue(t, reg, "webswarm_tracker_request_duration_seconds", map[string]string{"frontend": "udp", "kind": kind}); v < want {
			t.Errorf("kind %s observed %v times, want %v", kind, v, want)
		}
	}

	wrong := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x"}, []string{"kind"})
	if _, err := New(Config{Latency: wrong}, f.tr, nil); err == nil {
		t.Error("New accepted a histogram without a frontend label")
	}
}

// TestServeClose: several sockets at once; Close stops them all, and a Serve after Close
// returns at once. A registry refuses a second Server's metrics with an error, not a panic.
func TestServeClose(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newTracker(t, nil, announce.Config{})
	srv, err := New(Config{Workers: 3}, tr, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, tr, reg); err == nil {
		t.Error("second registration: no error")
	}
	done := make(chan error, 2)
	var addrs []netip.AddrPort
	for range 2 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, pc.LocalAddr().(*net.UDPAddr).AddrPort())
		go func() { done <- srv.Serve(pc) }()
	}
	for _, a := range addrs {
		newClient(t, a).connect()
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(pc); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !errors.Is(ErrServerClosed, net.ErrClosed) {
		t.Error("ErrServerClosed does not wrap net.ErrClosed")
	}
}

// TestPacketConn serves a net.PacketConn that is not a *net.UDPConn (through the adapter),
// and a socket closed under it ends Serve with the error.
func TestPacketConn(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wrapped := struct{ net.PacketConn }{pc}
	tr := newTracker(t, nil, announce.Config{})
	srv, err := New(Config{Workers: 2}, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(wrapped) }()
	c := newClient(t, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	c.connect()
	tx := c.nextTx()
	decodeAnnounce(t, c.roundTrip(ann{ih: 1, id: 'w', port: 1}.packet(c.connID, tx)), tx, 6)
	pc.Close()
	if err := <-done; err == nil || errors.Is(err, ErrServerClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after its socket closed: %v", err)
	}
}

func TestConfig(t *testing.T) {
	tr := newTracker(t, nil, announce.Config{})
	for _, cfg := range []Config{
		{ConnIDLifetime: time.Millisecond},
		{MaxScrapeHashes: -1},
		{Workers: -2},
	} {
		if _, err := New(cfg, tr, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New with a nil tracker accepted")
	}
}

// flakyConn is a net.PacketConn that fails one read, then delivers one connect request
// (from a non-UDP address first, which must be skipped), records the reply and waits to be
// closed.
type flakyConn struct {
	net.PacketConn // unused methods
	step           int
	replies        chan []byte
	closed         chan struct{}
}

var errFlaky = errors.New("flaky read")

func (c *flakyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.step++
	switch c.step {
	case 1:
		return 0, nil, errFlaky
	case 2:
		return copy(b, connectPacket(9)), &net.IPAddr{IP: net.IPv4(192, 0, 2, 1)}, nil
	case 3:
		return copy(b, connectPacket(10)), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 6881}, nil
	}
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *flakyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.replies <- append([]byte(nil), b...)
	return len(b), nil
}

func (c *flakyConn) Close() error {
	close(c.closed)
	return nil
}

// TestReadError: a failed read is logged and retried after a pause; the worker carries on.
func TestReadError(t *testing.T) {
	tr := newTracker(t, nil, announce.Config{})
	srv, err := New(Config{Workers: 1, Logger: slog.New(slog.DiscardHandler)}, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &flakyConn{replies: make(chan []byte, 4), closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(c) }()
	r := <-c.replies
	checkHeader(t, r, actionConnect, 10)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if len(c.replies) != 0 {
		t.Errorf("%d more replies (to the non-UDP sender?)", len(c.replies))
	}
}

// TestRateLimit: with a limiter, announces past the burst are refused with their reason; a
// scrape is not an announce.
func TestRateLimit(t *testing.T) {
	f := serve(t, "127.0.0.1", Config{RateLimit: announce.NewRateLimiter(0.001, 2, 100)})
	c := newClient(t, f.addr)
	c.connect()
	a := ann{ih: 1, id: 'r', left: 1, port: 6881}
	for i, ok := range []bool{true, true, false, false} {
		tx := c.nextTx()
		r := c.roundTrip(a.packet(c.connID, tx))
		if got := binary.BigEndian.Uint32(r) == actionAnnounce; got != ok {
			t.Fatalf("announce %d: accepted %v, want %v", i, got, ok)
		}
		if !ok {
			if msg := errorText(t, r, tx); !strings.Contains(msg, "slow down") {
				t.Errorf("error %q", msg)
			}
		}
	}
	tx := c.nextTx()
	checkHeader(t, c.roundTrip(scrapePacket(c.connID, tx, 1)), actionScrape, tx)
	if v := metricValue(t, f.reg, "webswarm_tracker_failures_total", map[string]string{"reason": announce.CodeRateLimited}); v != 2 {
		t.Errorf("rate_limited failures = %v, want 2", v)
	}
}
