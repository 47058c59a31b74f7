package session

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// BenchmarkGet measures the downloading path: a Torrent with nothing fetches a 64 MiB torrent
// (256 KiB pieces) from one seeding Torrent over loopback, assembling, hashing and writing
// every piece. Both run in this process, so CPU figures (and -cpuprofile) include the seed's
// sendfile side; the getter's own cost is the part under download.go, claims.go and the
// reader.
func BenchmarkGet(b *testing.B) {
	const size = 64 << 20
	f := newFixture(b, size, 256<<10)
	seed := startNode(b, f.mi, f.seedFiles(b), f.full(), nodeOpts{tag: 0xff, enc: wire.Off})
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		b.StopTimer()
		lf, _ := f.leechFiles(b)
		b.StartTimer()
		// A new peer ID each time: the seed may not have seen the last one leave.
		leech := startNode(b, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: byte(i % 0xff)})
		leech.t.AddPeers([]netip.AddrPort{seed.addr})
		waitDone(b, leech.t, time.Minute)
	}
	b.StopTimer()
	// CPU of the whole process (user+system) per GiB moved: what a download costs the
	// machine, which the wall time on a shared machine hides.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N)*float64(1<<30)/size, "cpu-s/GiB")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
