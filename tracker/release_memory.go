package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// releaseMemory returns freed heap to the operating system after bursts of growth.
//
// The peer store grows in bursts (a restart, a popular torrent): every index resize leaves
// its old array as garbage, and the Go runtime keeps freed pages mapped until its background
// scavenger returns them, which can take minutes — meanwhile RSS overstates the tracker's
// memory by 10–40 %. Once a second this compares the memory the runtime holds with the live
// heap; when more than an eighth (and 4 MiB) is not live, it runs debug.FreeOSMemory (a GC
// and a full scavenge). The heap is almost all pointer-free slabs, so the GC is cheap; it
// runs at most every 3 s.
func releaseMemory(ctx context.Context) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(last) < 3*time.Second {
				continue
			}
			metrics.Read(samples)
			held := samples[0].Value.Uint64() + samples[1].Value.Uint64() + samples[2].Value.Uint64()
			live := samples[3].Value.Uint64()
			if held > live+live/8 && held-live > 4<<20 {
				debug.FreeOSMemory()
				last = now
			}
		}
	}
}
