package udpapi

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// fixture is a Server over a fresh in-memory tracker, serving a loopback socket.
type fixture struct {
	srv  *Server
	tr   *announce.Tracker
	reg  *prometheus.Registry
	addr netip.AddrPort
}

// newTracker returns a tracker over a fresh store, its metrics registered with reg.
func newTracker(t testing.TB, reg prometheus.Registerer, acfg announce.Config) *announce.Tracker {
	t.Helper()
	store, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := announce.New(acfg, store, announce.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		store.Close()
	})
	return tr
}

// serve starts a Server with cfg on host:0 ("127.0.0.1" or "::1") and stops it at cleanup,
// checking that Serve returned ErrServerClosed.
func serve(t testing.TB, host string, cfg Config, setup ...func(*Server)) *fixture {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return serveConn(t, pc, cfg, setup...)
}

// serveConn is serve on a socket of the caller's; setup runs before Serve starts.
func serveConn(t testing.TB, pc net.PacketConn, cfg Config, setup ...func(*Server)) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	tr := newTracker(t, reg, announce.Config{})
	srv, err := New(cfg, tr, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range setup {
		fn(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return &fixture{srv: srv, tr: tr, reg: reg, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// client speaks BEP 15 from its own socket (so its own address and port).
type client struct {
	t      testing.TB
	conn   *net.UDPConn
	tx     uint32
	connID uint64
}

func newClient(t testing.TB, server netip.AddrPort) *client {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c}
}

func (c *client) port() uint16 { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// roundTrip sends p and returns the next reply. The deadline only keeps a broken test from
// hanging; nothing is timed.
func (c *client) roundTrip(p []byte) []byte {
	c.t.Helper()
	if _, err := c.conn.Write(p); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

func (c *client) read() []byte {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("no reply: %v", err)
	}
	return buf[:n]
}

func (c *client) nextTx() uint32 {
	c.tx++
	return c.tx
}

func connectPacket(tx uint32) []byte {
	p := binary.BigEndian.AppendUint64(nil, protocolID)
	p = binary.BigEndian.AppendUint32(p, actionConnect)
	return binary.BigEndian.AppendUint32(p, tx)
}

// connect gets a connection ID and keeps it.
func (c *client) connect() {
	c.t.Helper()
	tx := c.nextTx()
	r := c.roundTrip(connectPacket(tx))
	checkHeader(c.t, r, actionConnect, tx)
	if len(r) != connectReplyLen {
		c.t.Fatalf("connect reply is %d bytes", len(r))
	}
	c.connID = binary.BigEndian.Uint64(r[8:])
}

// ann is an announce as a test writes it.
type ann struct {
	ih      byte // info-hash: 20 copies of this byte
	id      byte // peer ID: 20 copies of this byte
	left    uint64
	event   uint32
	ip      [4]byte
	key     uint32
	numWant int32
	port    uint16
}

func (a ann) packet(connID uint64, tx uint32) []byte {
	p := binary.BigEndian.AppendUint64(nil, connID)
	p = binary.BigEndian.AppendUint32(p, actionAnnounce)
	p = binary.BigEndian.AppendUint32(p, tx)
	p = append(p, repeat(a.ih, 20)...)
	p = append(p, repeat(a.id, 20)...)
	p = binary.BigEndian.AppendUint64(p, 0) // downloaded
	p = binary.BigEndian.AppendUint64(p, a.left)
	p = binary.BigEndian.AppendUint64(p, 0) // uploaded
	p = binary.BigEndian.AppendUint32(p, a.event)
	p = append(p, a.ip[:]...)
	p = binary.BigEndian.AppendUint32(p, a.key)
	p = binary.BigEndian.AppendUint32(p, uint32(a.numWant))
	return binary.BigEndian.AppendUint16(p, a.port)
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func ihOf(b byte) bittorrent.InfoHash {
	var ih bittorrent.InfoHash
	copy(ih[:], repeat(b, 20))
	return ih
}

// announceReply is a decoded announce answer.
type announceReply struct {
	interval, leechers, seeders uint32
	peers                       []netip.AddrPort
}

func decodeAnnounce(t testing.TB, r []byte, tx uint32, peerLen int) announceReply {
	t.Helper()
	checkHeader(t, r, actionAnnounce, tx)
	if len(r) < announceReplyLen || (len(r)-announceReplyLen)%peerLen != 0 {
		t.Fatalf("announce reply of %d bytes, peers of %d", len(r), peerLen)
	}
	ar := announceReply{
		interval: binary.BigEndian.Uint32(r[8:]),
		leechers: binary.BigEndian.Uint32(r[12:]),
		seeders:  binary.BigEndian.Uint32(r[16:]),
	}
	for p := r[announceReplyLen:]; len(p) > 0; p = p[peerLen:] {
		a, _ := netip.AddrFromSlice(p[:peerLen-2])
		ar.peers = append(ar.peers, netip.AddrPortFrom(a, binary.BigEndian.Uint16(p[peerLen-2:])))
	}
	return ar
}

// checkHeader fails unless r starts with action and tx; an unexpected error packet's text
// is shown.
func checkHeader(t testing.TB, r []byte, action, tx uint32) {
	t.Helper()
	if len(r) < 8 {
		t.Fatalf("reply of %d bytes", len(r))
	}
	got := binary.BigEndian.Uint32(r)
	if got == actionError && action != actionError {
		t.Fatalf("error packet %q, want action %d", r[8:], action)
	}
	if got != action {
		t.Fatalf("reply action %d, want %d", got, action)
	}
	if gotTx := binary.BigEndian.Uint32(r[4:]); gotTx != tx {
		t.Fatalf("reply transaction ID %d, want %d", gotTx, tx)
	}
}

// errorText returns an error packet's message, failing unless r is one for tx.
func errorText(t testing.TB, r []byte, tx uint32) string {
	t.Helper()
	checkHeader(t, r, actionError, tx)
	return string(r[8:])
}

func scrapePacket(connID uint64, tx uint32, ihs ...byte) []byte {
	p := binary.BigEndian.AppendUint64(nil, connID)
	p = binary.BigEndian.AppendUint32(p, actionScrape)
	p = binary.BigEndian.AppendUint32(p, tx)
	for _, b := range ihs {
		p = append(p, repeat(b, 20)...)
	}
	return p
}

// metricValue returns the value of the counter or histogram count name{labels} in reg.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return m.GetGauge().GetValue()
}
