package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the garbage the collector lets accumulate before it runs, at least. With
// GOGC's default of 100 a tracker whose live heap is 10 MB collects after every 10 MB of
// net/http's per-request garbage — several times a second under load, which cost 22 % of the
// CPU of a Connection: close request (72.5 → 56.6 µs with more headroom). The peer tables are
// pointer-free slabs, so a larger headroom makes collections rarer without making them slower;
// releaseMemory below still hands idle garbage back to the OS.
const gcHeadroom = 32 << 20

// releaseMemory sets the collector's headroom (see gcHeadroom) and returns freed heap to the
// operating system after bursts of growth.
//
// The peer store grows in bursts (a restart, a popular torrent): every index resize leaves
// its old array as garbage, and the Go runtime keeps freed pages mapped until its background
// scavenger returns them, which can take minutes — meanwhile RSS overstates the tracker's
// memory by 10–40 %. Once a second this compares the memory the runtime holds with the live
// heap; when more than an eighth (and 4 MiB) is not live and less than 8 MiB was allocated in
// the last second, it runs debug.FreeOSMemory (a GC and a full scavenge). The heap is almost
// all pointer-free slabs, so the GC is cheap; it runs at most every 3 s.
func releaseMemory(ctx context.Context) {
	tuneGC := os.Getenv("GOGC") == "" // an operator's GOGC wins
	percent := 100
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last time.Time
	var allocated uint64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			metrics.Read(samples)
			held := samples[0].Value.Uint64() + samples[1].Value.Uint64() + samples[2].Value.Uint64()
			live := samples[3].Value.Uint64()
			if tuneGC && live > 0 {
				// GOGC such that the heap goal is at least live + gcHeadroom, 100..800.
				want := min(max(int(gcHeadroom*100/live), 100), 800)
				if want > percent+percent/8 || want < percent-percent/8 {
					debug.SetGCPercent(want)
					percent = want
				}
			}
			// Release only while allocation is quiet (after a burst of growth, not during
			// request load): pages handed back under load are faulted in again at once.
			rate := samples[4].Value.Uint64() - allocated
			allocated = samples[4].Value.Uint64()
			if now.Sub(last) < 3*time.Second || rate > 8<<20 {
				continue
			}
			if held > live+live/8 && held-live > 4<<20 {
				debug.FreeOSMemory()
				last = now
			}
		}
	}
}
