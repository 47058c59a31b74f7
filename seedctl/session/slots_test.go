package session

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// smallReceiveBuffer is a dialer whose sockets have a 4 KiB receive buffer (set before the
// connect, so the window stays small): a peer that stops reading stalls our writes soon.
func smallReceiveBuffer() *net.Dialer {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	return d
}

// from is a dialer whose connections come from the loopback address local.
func from(local string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
}

// TestSlotHoggersLoseTheirSlots: two peers take the seed's regular and optimistic slots,
// and then either ask for 500 blocks each and stop reading, or ask for nothing. The
// optimistic slot would stay theirs 30 s and the regular one until it received its 16 MiB
// quota. Peers whose socket stalls are choked after UploadStallTimeout, idle slot holders
// rotate out after as long, and an honest leecher that came later completes well before
// the optimistic slot would have rotated.
func TestSlotHoggersLoseTheirSlots(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		request  bool // ask for blocks, then stop reading
		dialer   *net.Dialer
		minStall float64
	}{
		{"not reading", 24 << 20, true, smallReceiveBuffer(), 1},
		{"asking for nothing", 4 << 20, false, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.size, 256<<10)
			seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
				cfg:   func(c *Config) { c.MaxUploads, c.UploadStallTimeout = 1, time.Second },
				tweak: func(t *Torrent) { t.rechokeEvery = 100 * time.Millisecond }})
			for _, tag := range []byte{'a', 'b'} {
				h := dialRawWith(t, tc.dialer, seed.addr, f.mi, tag, wire.Reserved{}, wire.Off)
				h.w.Interested()
				h.flush()
				h.expect(wire.Unchoke, 5*time.Second) // Fill for the first, the first rechoke's optimistic slot for the second
				if !tc.request {
					continue
				}
				for i := range ReqQ {
					b := uint32(i) * wire.BlockSize
					h.w.Request(b/uint32(f.mi.Layout.PieceLength), b%uint32(f.mi.Layout.PieceLength), wire.BlockSize)
				}
				h.flush()
			}
			lf, dir := f.leechFiles(t)
			leech := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: 'l', enc: wire.Off})
			leech.t.AddPeers([]netip.AddrPort{seed.addr})
			waitDone(t, leech.t, 20*time.Second)
			checkPayload(t, dir, f)
			if n := metricValue(seed.metrics.stalls); n < tc.minStall {
				t.Errorf("upload stalls counted: %v, want at least %v", n, tc.minStall)
			}
		})
	}
}

// TestConnsPerIP: a torrent keeps at most MaxConnsPerIP connections with one address;
// the next is refused and counted, and another address still gets in.
func TestConnsPerIP(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		cfg: func(c *Config) { c.MaxConnsPerIP = 2 }})
	for _, tag := range []byte{'a', 'b'} {
		dialRawWith(t, from("127.0.0.2"), seed.addr, f.mi, tag, wire.DefaultReserved, wire.Off).expect(wire.HaveAll, 5*time.Second)
	}
	over := dialRawWith(t, from("127.0.0.2"), seed.addr, f.mi, 'c', wire.DefaultReserved, wire.Off)
	if !over.closed(5 * time.Second) {
		t.Fatal("third connection from 127.0.0.2 kept with MaxConnsPerIP=2")
	}
	waitCounter(t, seed.metrics, "refused", RefusedIPLimit, 1)
	dialRawWith(t, from("127.0.0.3"), seed.addr, f.mi, 'd', wire.DefaultReserved, wire.Off).expect(wire.HaveAll, 5*time.Second)
	if got := fmt.Sprint(counter(seed.metrics, "refused", RefusedIPLimit)); got != "1" {
		t.Errorf("ip_limit refusals %s, want 1", got)
	}
}

// TestNewPeerQueuesBehindWaiting: a peer that connects (or reconnects, after hogging a
// slot) ranks behind one that was already waiting for a seeding slot when it came.
// No loop runs: the test drives the torrent's loop methods itself.
func TestNewPeerQueuesBehindWaiting(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	ih := bittorrent.InfoHash(f.mi.InfoHash)
	wc := &wire.Config{PeerID: peerID('s'), Reserved: wire.DefaultReserved, Known: func(h bittorrent.InfoHash) bool { return h == ih }}
	tor, err := New(f.mi, f.seedFiles(t), f.full(), Config{PeerID: peerID('s'), Wire: wc, MaxUploads: 1, ChokerSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var (
		pipes []net.Conn
		wg    sync.WaitGroup
	)
	defer func() {
		for _, c := range pipes {
			c.Close()
		}
		wg.Wait()
		tor.wg.Wait()
	}()
	connect := func(tag byte) *peer {
		a, b := net.Pipe()
		pipes = append(pipes, a, b)
		errc := make(chan error, 1)
		wg.Go(func() {
			c, err := wire.Initiate(b, &wire.Config{PeerID: peerID(tag), Encryption: wire.Off}, ih)
			errc <- err
			if err == nil {
				io.Copy(io.Discard, c.Reader) // until the pipe closes
			}
		})
		c, err := wire.Accept(a, wc)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		tor.addConn(c, netip.AddrPort{})
		return tor.peers[len(tor.peers)-1]
	}
	waiting := connect('w')
	waiting.interested = true
	waiting.chk.UnchokedAt = time.Now() // served, then rotated out: waits since then
	hog := connect('h')                 // came back after that
	hog.interested = true
	tor.rechoke(time.Now())
	if !waiting.chk.Unchoked || waiting.chk.Optimistic {
		t.Errorf("the peer waiting longest did not get the regular slot: %+v", waiting.chk)
	}
	if hog.chk.Unchoked && !hog.chk.Optimistic {
		t.Errorf("a peer that came later took the regular slot first: %+v", hog.chk)
	}
}
