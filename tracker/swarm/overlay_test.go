package swarm

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// fakeOverlay is an Overlay of fixed counts.
type fakeOverlay map[bittorrent.InfoHash]Counts

func (f fakeOverlay) Counts(ih bittorrent.InfoHash) (Counts, bool) { c, ok := f[ih]; return c, ok }

func (f fakeOverlay) RangeTorrents(fn func(bittorrent.InfoHash, Counts) bool) {
	for ih, c := range f {
		if !fn(ih, c) {
			return
		}
	}
}

func (f fakeOverlay) Totals() (torrents, seeders, leechers int) {
	for _, c := range f {
		torrents++
		seeders += int(c.Complete)
		leechers += int(c.Incomplete)
	}
	return
}

func TestWithOverlay(t *testing.T) {
	m, err := NewMemory(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	shared, only := benchIH(1), benchIH(2)
	o := fakeOverlay{shared: {Complete: 2, Incomplete: 1}, only: {Incomplete: 3, Downloaded: 4}}
	s := WithOverlay(m, o)
	a := Announce{InfoHash: shared, PeerID: benchID(1), Addr: netip.MustParseAddrPort("192.0.2.1:6881"), Left: 5, NumWant: 50}
	var out PeerList
	r, err := s.Announce(&a, &out)
	if err != nil || r.Complete != 2 || r.Incomplete != 2 {
		t.Fatalf("announce %+v %v: want the store's leecher and the overlay's peers", r, err)
	}
	if len(out.V4) != 0 {
		t.Fatalf("peer list %x: the overlay's peers are never handed out", out.V4)
	}
	if c, ok := s.Scrape(only); !ok || c.Incomplete != 3 || c.Downloaded != 4 {
		t.Fatalf("scrape of an overlay-only torrent %+v %v", c, ok)
	}
	if c, ok := s.Scrape(benchIH(3)); ok || c != (Counts{}) {
		t.Fatalf("scrape of an unknown torrent %+v %v", c, ok)
	}
	got := map[bittorrent.InfoHash]Counts{}
	s.RangeTorrents(func(ih bittorrent.InfoHash, c Counts) bool { got[ih] = c; return true })
	if len(got) != 2 || got[shared] != (Counts{Complete: 2, Incomplete: 2}) || got[only] != o[only] {
		t.Fatalf("RangeTorrents %v", got)
	}
	n := 0
	s.RangeTorrents(func(bittorrent.InfoHash, Counts) bool { n++; return false })
	if n != 1 {
		t.Fatalf("RangeTorrents went on after false: %d calls", n)
	}
	if tot := s.Totals(); tot.Torrents != 2 || tot.Seeders != 2 || tot.Leechers != 5 || tot.Downloaded != 4 || tot.PeersV4 != 1 {
		t.Fatalf("totals %+v", tot)
	}
	// What is saved is the store's alone.
	m.Walk(func(ih bittorrent.InfoHash, _ uint32, peers []PeerRecord) bool {
		if ih != shared || len(peers) != 1 {
			t.Errorf("walk: %x with %d peers", ih, len(peers))
		}
		return true
	})
}

func TestCountCompletion(t *testing.T) {
	m, err := NewMemory(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for range 2 {
		if err := m.CountCompletion(benchIH(1)); err != nil {
			t.Fatal(err)
		}
	}
	m.Expire()
	if c, ok := m.Scrape(benchIH(1)); !ok || c != (Counts{Downloaded: 2}) {
		t.Fatalf("after two completions and an expiry: %+v %v", c, ok)
	}
	n := 0
	m.Walk(func(ih bittorrent.InfoHash, downloaded uint32, peers []PeerRecord) bool {
		if ih == benchIH(1) && downloaded == 2 && len(peers) == 0 {
			n++
		}
		return true
	})
	if n != 1 {
		t.Fatal("the completions are not in what is saved")
	}

	full, err := NewMemory(Config{MaxTorrents: 1, KeepDead: true})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if err := full.CountCompletion(benchIH(2)); err != nil {
		t.Fatal(err)
	}
	if err := full.CountCompletion(benchIH(3)); !errors.Is(err, ErrTooManyTorrents) {
		t.Fatalf("a second torrent in a store of 1: %v", err)
	}
}

// BenchmarkAnnounceOverlay is BenchmarkAnnounce's re-announce through WithOverlay, every
// torrent having overlay peers. It must report 0 allocs/op.
func BenchmarkAnnounceOverlay(b *testing.B) {
	m, err := NewMemory(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const torrents, peers = 1000, 100_000
	benchPopulation(b, m, torrents, 0, peers)
	o := fakeOverlay{}
	for i := range torrents {
		o[benchIH(i)] = Counts{Complete: 1, Incomplete: 2}
	}
	s := WithOverlay(m, o)
	var out PeerList
	var a Announce // reused, as the frontends do: through the Store interface it escapes
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a = benchSlot(i%peers, torrents)
		out.Reset()
		if _, err := s.Announce(&a, &out); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
