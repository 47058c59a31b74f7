package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/session/choker"
	"github.com/webswarm/webswarm/seedctl/wire"
)

func TestThreePartySwarm(t *testing.T) {
	f := newFixture(t, 4<<20+777, 32<<10)
	// The seed is capped (1 MiB/s after a burst of 1 MiB, for 8 MiB owed to two leechers,
	// who keep about a second of its rate requested), so the leechers trade pieces, as a
	// swarm should.
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Prefer,
		cfg: func(c *Config) { c.TorrentUploadRate = 1 << 20 }})
	af, adir := f.leechFiles(t)
	bf, bdir := f.leechFiles(t)
	// Twice on a loaded machine a leecher sat 30 s on its last pieces with both seeds
	// connected. Two ways there are fixed: an endgame copy dropped while a reader that then
	// died held the block (TestEndgameDroppedCopyIsAskedAgain), and a block stored by the
	// reader of a peer the loop had just dropped, a duplicate connection from this test's
	// simultaneous opens (Torrent.handle). Snubbing (SnubTimeout, 60 s) recovers requests a
	// peer never answers, so the leechers here snub after 3 s and the test still demands a
	// complete download.
	snubFast := func(t *Torrent) { t.snubAfter = 3 * time.Second }
	a := startNode(t, f.mi, af, wire.Bitfield{}, nodeOpts{tag: 'a', enc: wire.Prefer, tweak: snubFast})
	b := startNode(t, f.mi, bf, wire.Bitfield{}, nodeOpts{tag: 'b', enc: wire.Prefer, tweak: snubFast})
	a.t.AddPeers([]netip.AddrPort{seed.addr, b.addr})
	b.t.AddPeers([]netip.AddrPort{seed.addr, a.addr, b.addr}) // its own address: skipped as self
	waitDone(t, a.t, 30*time.Second)
	waitDone(t, b.t, 30*time.Second)
	checkPayload(t, adir, f)
	checkPayload(t, bdir, f)
	if up := a.t.Stats().Uploaded + b.t.Stats().Uploaded; up == 0 {
		t.Errorf("the leechers traded nothing: all %d bytes came from the capped seed", 2*len(f.payload))
	}
}

// TestChokerRotation: with one regular slot and more interested leechers, every leecher is
// unchoked in turn.
func TestChokerRotation(t *testing.T) {
	f := newFixture(t, 256<<10, 32<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		cfg: func(c *Config) { c.MaxUploads = 1 },
		tweak: func(t *Torrent) {
			t.rechokeEvery = 50 * time.Millisecond
			t.choker = choker.New(choker.Config{Slots: 1, Quota: 1, OptimisticInterval: 50 * time.Millisecond, Seed: 3})
		}})
	const n = 4
	unchoked := make(chan byte, 100)
	for i := range n {
		tag := byte('a' + i)
		p := dialRaw(t, seed.addr, f.mi, tag, wire.DefaultReserved, wire.Off)
		p.w.Interested()
		p.flush()
		go func() {
			for {
				m, err := p.next(10 * time.Second)
				if err != nil {
					return
				}
				if m.ID == wire.Unchoke {
					unchoked <- tag
					// Use the slot: the quota (1 byte) is then spent and it rotates.
					p.w.Request(0, 0, 16<<10)
					p.w.Flush()
				}
			}
		}()
	}
	seen := map[byte]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case tag := <-unchoked:
			seen[tag] = true
		case <-deadline:
			t.Fatalf("after 10 s only %d of %d leechers were ever unchoked", len(seen), n)
		}
	}
}

func TestFetchMetadata(t *testing.T) {
	f := newFixture(t, 300<<10, 16<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Prefer})
	peers := make(chan []netip.AddrPort, 1)
	peers <- []netip.AddrPort{seed.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := FetchMetadata(ctx, seed.t.InfoHash(), peers, Config{PeerID: peerID('m')})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(info, f.mi.InfoBytes) {
		t.Fatal("fetched metadata differs from the info dictionary")
	}

	// Nobody has it: ErrNoMetadata once the address channel closes.
	var other bittorrent.InfoHash
	other[0] = 7
	none := make(chan []netip.AddrPort, 1)
	none <- []netip.AddrPort{seed.addr} // refuses the unknown info-hash
	close(none)
	if _, err := FetchMetadata(ctx, other, none, Config{PeerID: peerID('m')}); !errors.Is(err, ErrNoMetadata) {
		t.Fatalf("fetch of an unknown torrent: %v, want ErrNoMetadata", err)
	}
}

func TestFetchMetadataLarge(t *testing.T) {
	// 4096 pieces: 80 KiB of hashes, five metadata pieces.
	f := newFixture(t, 4096*16<<10, 16<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	peers := make(chan []netip.AddrPort, 1)
	peers <- []netip.AddrPort{seed.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := FetchMetadata(ctx, seed.t.InfoHash(), peers, Config{PeerID: peerID('m'), Wire: &wire.Config{PeerID: peerID('m'), Reserved: wire.DefaultReserved, Encryption: wire.Off}})
	if err != nil {
		t.Fatal(err)
	}
	if len(info) <= 4*wire.MetadataPieceLen || !bytes.Equal(info, f.mi.InfoBytes) {
		t.Fatalf("fetched %d bytes, info dictionary is %d", len(info), len(f.mi.InfoBytes))
	}
}

// TestBanAfterBadPieces: a peer that keeps sending bad data is banned after BanThreshold
// failed pieces and disconnected.
func TestBanAfterBadPieces(t *testing.T) {
	f := newFixture(t, 8*16<<10, 16<<10) // 8 pieces of one block
	lf, _ := f.leechFiles(t)
	leech := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: 'l', enc: wire.Off})
	p := dialRaw(t, leech.addr, f.mi, 'e', wire.DefaultReserved, wire.Off)
	p.w.HaveAll()
	p.w.Unchoke()
	p.flush()
	garbage := make([]byte, 16<<10)
	for {
		m, err := p.next(10 * time.Second)
		if err != nil {
			break // banned: the leecher closed the connection
		}
		if m.ID == wire.Request {
			p.w.Piece(m.Index, m.Begin, garbage[:m.Length])
			if p.w.Flush() != nil {
				break
			}
		}
	}
	waitCounter(t, leech.metrics, "hostile", HostileHashFailBan, 1)
	// The counter moves at the ban, the stats snapshot at the end of the loop's turn.
	testenv.WaitFor(t, 5*time.Second, "stats after the ban", func() error {
		if st := leech.t.Stats(); st.HashFails < BanThreshold || st.Have != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	// It stays banned.
	q := dialRaw(t, leech.addr, f.mi, 'f', wire.DefaultReserved, wire.Off)
	if !q.closed(5 * time.Second) {
		t.Fatal("banned address reconnected")
	}
	waitCounter(t, leech.metrics, "refused", RefusedBanned, 1)
}

// TestSimultaneousOpen: two leechers that dial each other at the same moment end with one
// connection, not none (each refusing the other's as a duplicate of its own).
func TestSimultaneousOpen(t *testing.T) {
	f := newFixture(t, 1<<20, 32<<10)
	for round := range 5 {
		af, _ := f.leechFiles(t)
		bf, _ := f.leechFiles(t)
		a := startNode(t, f.mi, af, wire.Bitfield{}, nodeOpts{tag: byte('a' + 2*round), enc: wire.Off})
		b := startNode(t, f.mi, bf, wire.Bitfield{}, nodeOpts{tag: byte('b' + 2*round), enc: wire.Off})
		a.t.AddPeers([]netip.AddrPort{b.addr})
		b.t.AddPeers([]netip.AddrPort{a.addr})
		testenv.WaitFor(t, 10*time.Second, "one connection between the two", func() error {
			if pa, pb := a.t.Stats().Peers, b.t.Stats().Peers; pa != 1 || pb != 1 {
				return fmt.Errorf("round %d: a has %d peers, b has %d", round, pa, pb)
			}
			return nil
		})
	}
}
