package session

import (
	"net"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// TestNonFastRequestsBounded: a peer without the Fast extension (as browsers are, which
// cannot be sent REJECT) gets at most ReqQ of its requests queued: the others are dropped,
// not queued, whatever it sends. The unit part checks the queue; the engine part floods a
// seed through an unbuffered pipe with ten times ReqQ requests while not reading, and then
// is served at most ReqQ + maxBatch blocks (a batch is in the writer's hands) before a
// marker request sent afterwards.
func TestNonFastRequestsBounded(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		f := newFixture(t, 64<<10, 16<<10)
		tor, err := newTorrent(f.mi, f.seedFiles(t), f.full(), Config{PeerID: peerID('s')})
		if err != nil {
			t.Fatal(err)
		}
		p := &peer{t: tor, fast: false, choking: true, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		r := request{1, 0, 16 << 10}
		for range 3 * ReqQ {
			p.onRequest(r) // choked: dropped
		}
		if len(p.queue) != 0 || len(p.out) != 0 {
			t.Fatalf("requests while choked: %d queued, %d bytes out; want none", len(p.queue), len(p.out))
		}
		p.choking = false
		for range 10 * ReqQ {
			p.onRequest(r)
		}
		if n := len(p.queue) - p.qhead; n != ReqQ || cap(p.queue) > 2*ReqQ {
			t.Fatalf("queue holds %d (capacity %d), want %d", n, cap(p.queue), ReqQ)
		}
		if len(p.out) != 0 {
			t.Fatalf("%d bytes queued for a peer without Fast: it cannot be sent REJECT", len(p.out))
		}
		if p.closeErr() != nil {
			t.Fatalf("peer closed: %v", p.closeErr())
		}
	})

	t.Run("engine", func(t *testing.T) {
		const pieces = 64
		f := newFixture(t, pieces*16<<10, 16<<10)
		seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
		ih := bittorrent.InfoHash(f.mi.InfoHash)
		ours, theirs := net.Pipe()
		t.Cleanup(func() { ours.Close(); theirs.Close() })
		go func() {
			c, err := wire.Accept(theirs, seed.wire)
			if err != nil {
				theirs.Close()
				return
			}
			seed.t.HandleConn(c)
		}()
		ours.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := wire.Initiate(ours, &wire.Config{PeerID: peerID('b'), Encryption: wire.Off}, ih) // no Fast, no BEP 10
		if err != nil {
			t.Fatal(err)
		}
		ours.SetDeadline(time.Time{})
		p := &rawPeer{tb: t, c: c, conn: ours, r: wire.NewReader(c.Reader, c.Limits(wire.Reserved{})), w: wire.NewWriter(c.Writer)}
		p.w.Interested()
		p.flush()
		p.expect(wire.Unchoke, 10*time.Second)

		// Flood without reading; the marker block (the last piece) is never among them.
		const flood = 10 * ReqQ
		for i := range flood {
			p.w.Request(uint32(i%(pieces-1)), 0, 16<<10)
			if p.w.Buffered() > 64<<10 {
				p.flush()
			}
		}
		// The seeder's reader buffers what it has not handled yet (up to the wire's read
		// buffer, 64 KiB, and its 512-byte raw buffer), so a flushed flood may still be on its
		// way to the queue. Keep-alives, four times that buffer, follow it: when they are
		// flushed, the reader has asked for more than its buffer holds, so every REQUEST
		// before them has been handled (queued or dropped).
		p.flush()
		p.send(make([]byte, 4*(64<<10+512))) // zero lengths: keep-alives
		served := 0
		next := func() *wire.Message {
			t.Helper()
			m, err := p.next(10 * time.Second)
			if err != nil {
				t.Fatalf("after %d blocks: %v", served, err)
			}
			return m
		}
		for served < ReqQ {
			if m := next(); m.ID == wire.Piece {
				served++
			} else if m.ID == wire.Choke {
				t.Fatalf("choked after %d blocks", served)
			}
		}
		// What is still queued comes before the marker.
		p.w.Request(pieces-1, 0, 16<<10)
		p.flush()
		for {
			m := next()
			if m.ID != wire.Piece {
				continue
			}
			if m.Index == pieces-1 {
				break
			}
			served++
		}
		if served > ReqQ+maxBatch {
			t.Fatalf("served %d of %d flooded requests: more than ReqQ (%d) + a batch (%d) were queued", served, flood, ReqQ, maxBatch)
		}
		if got := counter(seed.metrics, "hostile", HostileFlood); got != 0 {
			t.Errorf("peer counted as a flood (%v): dropping its extra requests is the design", got)
		}
		t.Logf("served %d of %d requests", served, flood)
	})
}
