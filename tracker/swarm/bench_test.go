package swarm

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// benchIH and benchID make identifiers without allocating, so benchmarks measure the store.
func benchIH(i int) bittorrent.InfoHash {
	var ih bittorrent.InfoHash
	binary.BigEndian.PutUint64(ih[:], uint64(i)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(ih[8:], uint64(i))
	return ih
}

func benchID(i int) bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], "-TB0001-")
	binary.BigEndian.PutUint64(id[8:], uint64(i)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint32(id[16:], uint32(i))
	return id
}

// benchPopulation registers peers over torrents the way trackerbench does: slot s is peer s
// of torrent s % torrents, 20 % seeders; slots [from, to) are registered.
func benchPopulation(b *testing.B, m *Memory, torrents, from, to int) {
	b.Helper()
	var out PeerList
	for s := from; s < to; s++ {
		a := benchSlot(s, torrents)
		a.Event = Started
		if s%5 == 0 {
			a.Left = 0
		}
		if _, err := m.Announce(&a, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSlot is slot s's re-announce as a leecher, numwant 50.
func benchSlot(s, torrents int) Announce {
	return Announce{
		InfoHash: benchIH(s % torrents),
		PeerID:   benchID(s),
		Addr:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1024+s/torrents)),
		Left:     1 << 20,
		NumWant:  50,
	}
}

// BenchmarkAnnounce measures a re-announce with numwant 50 in a population of 1,000 torrents
// and 100,000 peers. It must report 0 allocs/op.
func BenchmarkAnnounce(b *testing.B) {
	m, err := NewMemory(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const torrents, peers = 1000, 100_000
	benchPopulation(b, m, torrents, 0, peers)
	out := PeerList{V4: make([]byte, 0, 50*6), V6: make([]byte, 0, 50*18)}
	b.ReportAllocs()
	b.ResetTimer()
	s := 0
	for b.Loop() {
		s = (s + 7919) % peers
		a := benchSlot(s, torrents)
		out.Reset()
		if _, err := m.Announce(&a, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnnounceParallel is BenchmarkAnnounce from GOMAXPROCS goroutines: shards keep
// torrents from contending.
func BenchmarkAnnounceParallel(b *testing.B) {
	m, err := NewMemory(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const torrents, peers = 1000, 100_000
	benchPopulation(b, m, torrents, 0, peers)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		out := PeerList{V4: make([]byte, 0, 50*6)}
		s := 0
		for pb.Next() {
			s = (s + 7919) % peers
			a := benchSlot(s, torrents)
			out.Reset()
			if _, err := m.Announce(&a, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMemoryPerPeer reports the Go heap bytes per IPv4 peer between 100,000 and
// 1,000,000 peers over 1,000 torrents (the trackerbench population).
func BenchmarkMemoryPerPeer(b *testing.B) {
	for b.Loop() {
		m, err := NewMemory(Config{PeerTimeout: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		benchPopulation(b, m, 1000, 0, 100_000)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		benchPopulation(b, m, 1000, 100_000, 1_000_000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/900_000, "heapbytes/peer")
		m.Close()
	}
}
