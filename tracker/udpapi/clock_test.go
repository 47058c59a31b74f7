package udpapi

import (
	"sync/atomic"
	"time"
)

// atomicTime is a settable clock shared between a test and a server's worker.
type atomicTime struct{ ns atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.ns.Store(t.UnixNano()) }
func (a *atomicTime) get() time.Time  { return time.Unix(0, a.ns.Load()) }
