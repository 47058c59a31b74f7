package announce

import (
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// RateLimiter is a token bucket per client IP (keyed by the address the frontend resolved,
// never by a header the client controls). Memory is bounded: each of its shards forgets all
// its buckets when it would hold more than its share of maxIPs, which only ever lets a client
// through early.
type RateLimiter struct {
	limit  rate.Limit
	burst  int
	perMax int
	shards [64]rlShard
}

type rlShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
}

// NewRateLimiter allows perSecond announces a second per IP with bursts of burst, tracking at
// most about maxIPs addresses.
func NewRateLimiter(perSecond float64, burst, maxIPs int) *RateLimiter {
	l := &RateLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), perMax: max(maxIPs/64, 16)}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*rate.Limiter)
	}
	return l
}

// Allow reports whether a request from addr may go on now.
func (l *RateLimiter) Allow(addr netip.Addr) bool {
	b := addr.As16()
	sh := &l.shards[(b[15]^b[14]^b[13]^b[11]^b[7])&63]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lim := sh.m[addr]
	if lim == nil {
		if len(sh.m) >= l.perMax {
			clear(sh.m)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		sh.m[addr] = lim
	}
	return lim.Allow()
}
