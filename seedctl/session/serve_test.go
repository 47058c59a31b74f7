package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// idleConns opens n connections to addr from the loopback address from and sends nothing.
func idleConns(tb testing.TB, from, addr string, n int) []net.Conn {
	tb.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	var cs []net.Conn
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			tb.Fatalf("idle connection from %s: %v", from, err)
		}
		tb.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// TestServeIdleFlood: 80 silent connections from 127.0.0.2 and 80 more from four other
// addresses, more than every handshake slot: an honest peer still gets through, because
// one address holds at most MaxHandshakesPerIP slots and a new connection takes the
// oldest pending one's slot.
func TestServeIdleFlood(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	idleConns(t, "127.0.0.2", seed.addr.String(), 80)
	for i := 3; i < 7; i++ {
		idleConns(t, fmt.Sprintf("127.0.0.%d", i), seed.addr.String(), 20)
	}
	waitCounter(t, seed.metrics, "refused", RefusedHandshakesPerIP, 80-DefaultMaxHandshakesPerIP)
	for range 2 { // twice: once in a full table, once more with the first honest one gone
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := wire.Dial(ctx, nil, seed.addr.String(), &wire.Config{PeerID: peerID('h'), Reserved: wire.DefaultReserved, Encryption: wire.Off}, seed.t.InfoHash())
		cancel()
		if err != nil {
			t.Fatalf("honest peer during the flood: %v", err)
		}
		c.Close()
	}
}

// TestServeEvictsOldest: with every slot taken by silent connections, each new one closes
// the oldest, which is counted.
func TestServeEvictsOldest(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		serve: func(c *ServeConfig) { c.MaxHandshakes, c.MaxHandshakesPerIP = 4, 4 }})
	cs := idleConns(t, "127.0.0.2", seed.addr.String(), 4)
	idleConns(t, "127.0.0.3", seed.addr.String(), 2)
	for _, c := range cs[:2] { // the two oldest are closed by the server
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("oldest pending connection not closed: %v", err)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "evictions counted", func() error {
		if v := metricValue(seed.metrics.evicted); v != 2 {
			return fmt.Errorf("evicted %v, want 2", v)
		}
		return nil
	})
}

// TestServeFirstByteTimeout: a connection that says nothing is closed after
// FirstByteTimeout, long before the handshake's own timeout, and counted.
func TestServeFirstByteTimeout(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		serve: func(c *ServeConfig) { c.FirstByteTimeout, c.HandshakeTimeout = 200*time.Millisecond, time.Hour }})
	c := idleConns(t, "127.0.0.2", seed.addr.String(), 1)[0]
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("silent connection still open after 10 s")
	}
	waitCounter(t, seed.metrics, "refused", RefusedFirstByteTimeout, 1)
	// A peer that started its handshake has the handshake's time, not the first byte's:
	// it sends 4 bytes, and once a silent connection opened after it has timed out, the
	// rest; the handshake completes.
	slow, err := net.Dial("tcp", seed.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	hs := wire.AppendHandshake(nil, &wire.Handshake{Reserved: wire.DefaultReserved, InfoHash: seed.t.InfoHash(), PeerID: peerID('p')})
	if _, err := slow.Write(hs[:4]); err != nil {
		t.Fatal(err)
	}
	idleConns(t, "127.0.0.2", seed.addr.String(), 1)
	waitCounter(t, seed.metrics, "refused", RefusedFirstByteTimeout, 2)
	if _, err := slow.Write(hs[4:]); err != nil {
		t.Fatal(err)
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply := make([]byte, wire.HandshakeLen)
	if _, err := io.ReadFull(slow, reply); err != nil {
		t.Fatalf("handshake begun before the first-byte timeout: %v", err)
	}
}

// metricValue is the value of a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.GetGauge().GetValue()
	}
	return d.GetCounter().GetValue()
}
