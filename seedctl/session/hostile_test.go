package session

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

func msg(id wire.ID, payload ...uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+4*len(payload)))
	b = append(b, byte(id))
	for _, v := range payload {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// TestHostilePeers sends each kind of bad message on its own connection: each must end
// only that connection, be counted under its reason, and leave a well-behaved peer's
// download untouched.
func TestHostilePeers(t *testing.T) {
	// 13 pieces: a BITFIELD has 3 spare bits.
	f := newFixture(t, 13*32<<10-100, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	np := uint32(f.mi.Layout.NumPieces())
	bitfield := func(n int, last byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(1+n))
		b = append(b, byte(wire.BitfieldMsg))
		for range n - 1 {
			b = append(b, 0xff)
		}
		return append(b, last)
	}
	cases := []struct {
		name   string
		res    wire.Reserved
		send   []byte
		reason string
	}{
		{"length prefix over 1 MiB", wire.DefaultReserved, []byte{0, 0x20, 0, 0, byte(wire.Piece)}, HostileMessageTooLong},
		{"piece block over 16 KiB", wire.DefaultReserved, append(msg(wire.Piece, 0, 0)[:0:0], append(binary.BigEndian.AppendUint32(nil, 9+32<<10), byte(wire.Piece), 0, 0, 0, 0, 0, 0, 0, 0)...), HostileMessageTooLong},
		{"request of a piece past the end", wire.DefaultReserved, msg(wire.Request, np, 0, 16<<10), HostileRequestOutside},
		{"request past the end of the last piece", wire.DefaultReserved, msg(wire.Request, np-1, 16<<10, 16<<10), HostileRequestOutside},
		{"request over 128 KiB", wire.DefaultReserved, msg(wire.Request, 0, 0, 256<<10), HostileRequestTooLong},
		{"have past the end", wire.DefaultReserved, msg(wire.Have, np+5), HostileRequestOutside},
		{"bitfield too long", wire.DefaultReserved, bitfield(3, 0), HostileBadBitfield},
		{"bitfield with spare bits set", wire.DefaultReserved, bitfield(2, 0xff), HostileBadBitfield},
		{"have of 3 bytes", wire.DefaultReserved, []byte{0, 0, 0, 4, byte(wire.Have), 0, 0, 0}, HostileProtocol},
		{"have all without Fast", wire.Reserved{}, msg(wire.HaveAll), HostileProtocol},
		{"extended without BEP 10", wire.Reserved{}, []byte{0, 0, 0, 3, byte(wire.Extended), 0, 'x'}, HostileProtocol},
	}
	good := dialRaw(t, seed.addr, f.mi, 'g', wire.DefaultReserved, wire.Off)
	goodErr := make(chan error, 1)
	go func() { goodErr <- fetchBlocks(good, f.mi.Layout.PieceLength, f.mi.Layout.Total) }()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := counter(seed.metrics, "hostile", c.reason)
			p := dialRaw(t, seed.addr, f.mi, byte('A'+i), c.res, wire.Off)
			p.send(c.send)
			if !p.closed(5 * time.Second) {
				t.Fatal("connection still open after a hostile message")
			}
			waitCounter(t, seed.metrics, "hostile", c.reason, before+1)
		})
	}
	if err := <-goodErr; err != nil {
		t.Fatalf("well-behaved peer beside the hostile ones: %v", err)
	}
}

func TestUnknownInfoHash(t *testing.T) {
	f := newFixture(t, 100<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Prefer})
	cfg := &wire.Config{PeerID: peerID('x'), Reserved: wire.DefaultReserved, Encryption: wire.Off}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var other bittorrent.InfoHash
	other[0] = 1
	if c, err := wire.Dial(ctx, nil, seed.addr.String(), cfg, other); err == nil {
		c.Close()
		t.Fatal("handshake for an unknown info-hash succeeded")
	}
	waitCounter(t, seed.metrics, "hostile", HostileUnknownInfoHash, 1)
}

func TestSilentPeerTimesOut(t *testing.T) {
	f := newFixture(t, 100<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		tweak: func(t *Torrent) { t.idle = 300 * time.Millisecond }})
	p := dialRaw(t, seed.addr, f.mi, 'q', wire.DefaultReserved, wire.Off)
	if !p.closed(5 * time.Second) {
		t.Fatal("silent peer still connected")
	}
	waitCounter(t, seed.metrics, "hostile", HostileTimeout, 1)

	// A silent handshake (TCP open, nothing sent) is bounded by Serve's handshake deadline;
	// here we only check that it does not stop others from connecting.
	nc, err := net.Dial("tcp", seed.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q := dialRaw(t, seed.addr, f.mi, 'r', wire.DefaultReserved, wire.Off)
	q.expect(wire.HaveAll, 5*time.Second)
}

// TestChokedRequests: a peer we choke gets REJECT for its requests (Fast), but is served
// its allowed-fast pieces.
func TestChokedRequests(t *testing.T) {
	f := newFixture(t, 64*16<<10, 16<<10) // 64 pieces of one block
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	p := dialRaw(t, seed.addr, f.mi, 'c', wire.DefaultReserved, wire.Off)
	p.expect(wire.HaveAll, 5*time.Second)
	var allowed []uint32
	var notAllowed uint32
	// The seed sends its ALLOWED FAST set after the handshakes; collect it.
	want := wire.AllowedFastSet(seed.t.InfoHash(), p.c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(), 64, AllowedFastCount)
	for len(allowed) < len(want) {
		m := p.expect(wire.AllowedFast, 5*time.Second)
		allowed = append(allowed, m.Index)
	}
	for i := uint32(0); i < 64; i++ {
		in := false
		for _, a := range allowed {
			in = in || a == i
		}
		if !in {
			notAllowed = i
			break
		}
	}
	// Not interested, so choked: a normal request is rejected, an allowed-fast one served.
	p.w.Request(notAllowed, 0, 16<<10)
	p.w.Request(allowed[0], 0, 16<<10)
	p.flush()
	var rejected, served bool
	for !rejected || !served {
		m, err := p.next(5 * time.Second)
		if err != nil {
			t.Fatalf("rejected %v served %v: %v", rejected, served, err)
		}
		switch {
		case m.ID == wire.Reject && m.Index == notAllowed:
			rejected = true
		case m.ID == wire.Piece && m.Index == allowed[0]:
			if string(m.Block) != string(f.payload[int(m.Index)*16<<10:][:16<<10]) {
				t.Fatal("allowed-fast block has the wrong bytes")
			}
			served = true
		case m.ID == wire.Piece || m.ID == wire.Unchoke:
			t.Fatalf("unexpected %v %d while choked", m.ID, m.Index)
		}
	}
}

// TestCancelQueued: a CANCEL removes a queued request; a Fast peer gets a REJECT for it.
func TestCancelQueued(t *testing.T) {
	f := newFixture(t, 64<<10, 16<<10)
	tor, err := newTorrent(f.mi, f.seedFiles(t), f.full(), Config{PeerID: peerID('s')})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: tor, fast: true, choking: true, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	r1, r2 := request{1, 0, 16 << 10}, request{2, 0, 16 << 10}
	p.onRequest(r1) // choked: rejected
	if len(p.queue) != 0 || len(p.out) != 17 || wire.ID(p.out[4]) != wire.Reject {
		t.Fatalf("request while choked: queue %v, out % x", p.queue, p.out)
	}
	p.out = p.out[:0]
	p.choking = false
	p.onRequest(r1)
	p.onRequest(r2)
	p.onCancel(r1)
	if len(p.queue) != 1 || p.queue[0] != r2 {
		t.Fatalf("queue after CANCEL: %v", p.queue)
	}
	if len(p.out) != 17 || wire.ID(p.out[4]) != wire.Reject || binary.BigEndian.Uint32(p.out[5:]) != 1 {
		t.Fatalf("no REJECT for the cancelled request: % x", p.out)
	}
	p.onCancel(request{3, 0, 16 << 10}) // not queued: nothing
	if len(p.out) != 17 {
		t.Fatal("CANCEL of an unknown request answered")
	}
	// Choking drops what is queued, rejecting each.
	p.out = p.out[:0]
	p.setChoking(true)
	if len(p.queue)-p.qhead != 0 {
		t.Fatalf("queue after choke: %v", p.queue[p.qhead:])
	}
	if len(p.out) != 5+17 || wire.ID(p.out[4]) != wire.Choke || wire.ID(p.out[9]) != wire.Reject {
		t.Fatalf("choke output % x", p.out)
	}
	// A full queue rejects.
	p.choking = false
	p.out = p.out[:0]
	for range ReqQ + 3 {
		p.onRequest(r2)
	}
	if n := len(p.queue) - p.qhead; n != ReqQ {
		t.Fatalf("queue holds %d, want %d", n, ReqQ)
	}
	if len(p.out) != 3*17 {
		t.Fatalf("%d bytes of REJECT for 3 requests over the queue", len(p.out))
	}
}

// TestBitfieldMidConnectionReplaces: a BITFIELD after other messages replaces the peer's
// have-set (aria2 sends one), it does not end the connection.
func TestBitfieldMidConnectionReplaces(t *testing.T) {
	f := newFixture(t, 16*16<<10, 16<<10)
	lf, _ := f.leechFiles(t)
	leech := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: 'l', enc: wire.Off})
	p := dialRaw(t, leech.addr, f.mi, 'a', wire.Reserved{}, wire.Off) // aria2-like: no Fast
	p.w.Have(3)
	p.flush()
	p.expect(wire.Interested, 5*time.Second)
	// Replace: piece 3 gone, nothing else: the leecher loses interest.
	p.send(append(binary.BigEndian.AppendUint32(nil, 3), byte(wire.BitfieldMsg), 0, 0))
	p.expect(wire.NotInterested, 5*time.Second)
	// And again with piece 9.
	p.send(append(binary.BigEndian.AppendUint32(nil, 3), byte(wire.BitfieldMsg), 0, 0x40))
	p.expect(wire.Interested, 5*time.Second)
	if got := counter(leech.metrics, "hostile", HostileBadBitfield); got != 0 {
		t.Fatalf("mid-connection bitfield counted as hostile (%v)", got)
	}
}

// TestConnectionFlood opens many connections at once: Serve refuses what is over its
// limits, counts it, and a real peer still gets through afterwards.
func TestConnectionFlood(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off, maxConns: 50})
	var conns []net.Conn
	for range 1000 {
		c, err := net.DialTimeout("tcp", seed.addr.String(), 5*time.Second)
		if err != nil {
			break // the backlog may fill: that is the point
		}
		conns = append(conns, c)
	}
	if len(conns) < 200 {
		t.Fatalf("only %d connections opened", len(conns))
	}
	testenv.WaitFor(t, 10*time.Second, "refusals", func() error {
		if n := counter(seed.metrics, "refused", RefusedGlobalLimit) + counter(seed.metrics, "refused", RefusedHandshakesPerIP); n < float64(len(conns)-100) {
			return errors.New(formatFloat(n) + " refused")
		}
		return nil
	})
	for _, c := range conns {
		c.Close()
	}
	testenv.WaitFor(t, 10*time.Second, "a real peer after the flood", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := wire.Dial(ctx, nil, seed.addr.String(), &wire.Config{PeerID: peerID('z'), Reserved: wire.DefaultReserved, Encryption: wire.Off}, seed.t.InfoHash())
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
}

// TestTorrentLimitAndDuplicates: MaxConns per torrent, one connection per peer ID.
func TestTorrentLimitAndDuplicates(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		cfg: func(c *Config) { c.MaxConns = 2 }})
	a := dialRaw(t, seed.addr, f.mi, 'a', wire.DefaultReserved, wire.Off)
	a.expect(wire.HaveAll, 5*time.Second)
	dup := dialRaw(t, seed.addr, f.mi, 'a', wire.DefaultReserved, wire.Off)
	if !dup.closed(5 * time.Second) {
		t.Fatal("second connection with the same peer ID kept")
	}
	waitCounter(t, seed.metrics, "refused", RefusedDuplicate, 1)
	b := dialRaw(t, seed.addr, f.mi, 'b', wire.DefaultReserved, wire.Off)
	b.expect(wire.HaveAll, 5*time.Second)
	c := dialRaw(t, seed.addr, f.mi, 'c', wire.DefaultReserved, wire.Off)
	if !c.closed(5 * time.Second) {
		t.Fatal("third connection over MaxConns=2 kept")
	}
	waitCounter(t, seed.metrics, "refused", RefusedTorrentLimit, 1)
}
