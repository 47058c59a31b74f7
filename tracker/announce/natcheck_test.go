package announce

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// countingListener accepts on ip and counts the bytes its connections send before EOF.
func countingListener(t *testing.T, ip string) (uint16, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns, bytes atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			n, _ := io.Copy(io.Discard, c)
			bytes.Add(n)
			c.Close()
		}
	}()
	return uint16(l.Addr().(*net.TCPAddr).Port), &conns, &bytes
}

// visible reports whether a fresh announce gets the peer at ip:port.
func visible(t *testing.T, tr *Tracker, ip string, port uint16) bool {
	t.Helper()
	var resp Response
	r := req(1_000_000, 1)
	r.NumWant = 200
	if err := tr.Announce(r, &resp); err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr(ip).As4()
	for p := resp.Peers.V4; len(p) >= 6; p = p[6:] {
		if [4]byte(p[:4]) == want && binary.BigEndian.Uint16(p[4:]) == port {
			return true
		}
	}
	return false
}

func waitVisible(t *testing.T, tr *Tracker, ip string, port uint16, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !visible(t, tr, ip, port) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (%s:%d) not handed out after 20 s", what, ip, port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func announceFrom(t *testing.T, tr *Tracker, i int, ip string, port uint16) {
	t.Helper()
	r := req(i, port)
	r.Addr = netip.MustParseAddr(ip)
	var resp Response
	if err := tr.Announce(r, &resp); err != nil {
		t.Fatal(err)
	}
}

// The default check is a TCP connect that sends nothing: a client never attaches it to a
// torrent (libtorrent does so when it reads the info-hash of a handshake), so it cannot take
// the place of the client's connection to a seeder at the tracker's address. One check
// serves every peer ID and torrent announced from the address.
func TestNATCheckConnectSendsNothing(t *testing.T) {
	tr := newTracker(t, Config{NATCheck: 3, NATTimeout: 5 * time.Second})
	port, conns, sent := countingListener(t, "127.0.0.1")
	announceFrom(t, tr, 1, "127.0.0.1", port)
	waitVisible(t, tr, "127.0.0.1", port, "peer whose port accepts")
	deadlineWait(t, func() bool { return conns.Load() == 1 && tr.nat.pending() == 0 })
	if n := sent.Load(); n != 0 {
		t.Fatalf("the NAT check sent %d bytes; a handshake makes one-connection-per-IP clients drop a seeder", n)
	}
	// Another peer ID (another torrent's announce) from the same address: revealed from
	// the remembered result, no second connection.
	announceFrom(t, tr, 2, "127.0.0.1", port)
	if !visible(t, tr, "127.0.0.1", port) {
		t.Fatal("second peer ID from a checked address is hidden")
	}
	if got := metricValue(t, tr.metrics.natResult[natCached]); got != 1 {
		t.Errorf("cached results %v, want 1", got)
	}
	if c := conns.Load(); c != 1 {
		t.Errorf("%d connections for one address, want 1", c)
	}
	// A closed port stays hidden.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	announceFrom(t, tr, 3, "127.0.0.1", closed)
	deadlineWait(t, func() bool { return tr.nat.pending() == 0 })
	if visible(t, tr, "127.0.0.1", closed) {
		t.Error("peer on a closed port handed out")
	}
}

func deadlineWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A flood of new peer IDs from one source at a port that accepts and never answers (each
// handshake check hangs until its timeout) takes at most that source's share of the checks:
// a peer from another address is checked at once, and no peer is hidden because the queue
// is full.
func TestNATCheckFloodFromOneSource(t *testing.T) {
	tr := newTracker(t, Config{NATCheck: 3, NATHandshake: true, NATTimeout: time.Minute, NATWorkers: 4, NATQueue: 100, NATPerIP: 2})
	silent := uint16(testenv.SilentPeer(t, "127.0.0.1"))
	for i := range 1000 {
		announceFrom(t, tr, 10+i, "127.0.0.1", silent)
	}
	// An honest peer from another address: checked (a closed port at a third address
	// stays hidden, so it is a check, not a pass) and handed out.
	gl := uint16(testenv.HandshakePeer(t, "127.0.0.2", swarm.SuiteInfoHash(1), swarm.SuitePeerID(5)))
	announceFrom(t, tr, 5, "127.0.0.2", gl)
	cl, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := uint16(cl.Addr().(*net.TCPAddr).Port)
	cl.Close()
	announceFrom(t, tr, 6, "127.0.0.3", closed)
	waitVisible(t, tr, "127.0.0.2", gl, "honest peer during a flood")
	deadlineWait(t, func() bool { return metricValue(t, tr.metrics.natResult[natFailed]) >= 1 })
	if visible(t, tr, "127.0.0.3", closed) {
		t.Error("peer on a closed port handed out during a flood: it was not checked")
	}
	if got := tr.nat.pending(); got > 2 {
		t.Errorf("%d peers wait for a check; the flooding source may hold 2", got)
	}
	// The flood's own peers beyond its share are handed out unchecked, never hidden.
	// 998 of the flood, and the probe of visible (its own announce from 127.0.0.1).
	if busy := metricValue(t, tr.metrics.natResult[natSourceBusy]); busy != 999 {
		t.Errorf("source_busy %v, want 999", busy)
	}
	if !visible(t, tr, "127.0.0.1", silent) {
		t.Error("flooding source's peers hidden: the checker must not hide what it cannot check")
	}
}

// A full queue hands new peers out unchecked.
func TestNATCheckQueueFullHandsOut(t *testing.T) {
	tr := newTracker(t, Config{NATCheck: 3, NATHandshake: true, NATTimeout: time.Minute, NATWorkers: 1, NATQueue: 2, NATPerIP: 100})
	silent := uint16(testenv.SilentPeer(t, "127.0.0.1"))
	for i := range 5 {
		announceFrom(t, tr, 10+i, "127.0.0.1", silent)
	}
	if got := metricValue(t, tr.metrics.natResult[natQueueFull]); got != 3 {
		t.Errorf("queue_full %v, want 3", got)
	}
	if got := metricValue(t, tr.metrics.natPending); got != 2 {
		t.Errorf("pending gauge %v, want 2", got)
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// An address given up on is tried again an announce interval later: its owner may have
// opened the port since.
func TestNATCheckRetriesAfterInterval(t *testing.T) {
	tr := newTracker(t, Config{NATCheck: 1, Interval: time.Second, MinInterval: time.Second})
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	announceFrom(t, tr, 1, "127.0.0.2", port)
	deadlineWait(t, func() bool { return tr.nat.pending() == 0 })
	// The port opens: the address is checked again at a later announce and handed out.
	l, err = net.Listen("tcp", l.Addr().String())
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer l.Close()
	deadlineWait(t, func() bool {
		announceFrom(t, tr, 1, "127.0.0.2", port)
		return visible(t, tr, "127.0.0.2", port)
	})
	if got := metricValue(t, tr.metrics.natResult[natOK]); got < 1 {
		t.Errorf("ok checks %v", got)
	}
}
