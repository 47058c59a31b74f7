package announce

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/subnet"
)

// RateLimitConfig configures a RateLimiter. Zero fields take the defaults.
type RateLimitConfig struct {
	// PerSecond is the announces a second allowed per source; Burst the bucket's size
	// (default max(10×PerSecond, 10)).
	PerSecond float64
	Burst     int
	// MaxSources bounds the buckets held (default 1,000,000).
	MaxSources int
	// IPv4Prefix and IPv6Prefix are the prefix lengths that make one source (defaults 32
	// and 64): a host is given a whole IPv6 /64 and can send from any address in it.
	IPv4Prefix int
	IPv6Prefix int
	// Registerer, when set, receives the limiter's metrics.
	Registerer prometheus.Registerer
}

// RateLimiter is a token bucket per source: a client IPv4 address or IPv6 prefix (keyed by
// the address the frontend resolved, never by a header the client controls).
//
// Memory is bounded by MaxSources, split across shards. A shard that is full forgets only
// buckets that have refilled to at least half their burst, which lets their sources through
// at most half a burst early; a source being limited keeps its bucket, so a flood of new
// addresses cannot reset it. When a shard holds nothing it may forget, a new source is
// refused until one refills (to fill the table with such buckets takes about MaxSources ×
// PerSecond allowed announces a second, sustained).
type RateLimiter struct {
	limit  rate.Limit
	burst  int
	perMax int
	v4, v6 int
	seed   maphash.Seed
	shards [rlShards]rlShard

	forgotten prometheus.Counter
	tableFull prometheus.Counter
}

const rlShards = 64

type rlShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
	// noSweepUntil spaces out sweeps that free little, so that a full shard does not cost
	// a scan of itself for every new source.
	noSweepUntil time.Time
}

// NewRateLimiter allows perSecond announces a second per source (an IPv4 address or an IPv6
// /64) with bursts of burst, tracking at most about maxSources sources.
func NewRateLimiter(perSecond float64, burst, maxSources int) *RateLimiter {
	l, err := NewRateLimiterConfig(RateLimitConfig{PerSecond: perSecond, Burst: max(burst, 1), MaxSources: maxSources})
	if err != nil {
		panic(err) // unreachable: the prefixes are the defaults
	}
	return l
}

// NewRateLimiterConfig returns a RateLimiter configured by cfg, or an error naming a bad
// field.
func NewRateLimiterConfig(cfg RateLimitConfig) (*RateLimiter, error) {
	if cfg.PerSecond <= 0 {
		return nil, fmt.Errorf("rate limit %v announces/s: must be positive", cfg.PerSecond)
	}
	if cfg.Burst <= 0 {
		cfg.Burst = int(max(10*cfg.PerSecond, 10))
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1_000_000
	}
	if cfg.IPv4Prefix == 0 {
		cfg.IPv4Prefix = 32
	}
	if cfg.IPv6Prefix == 0 {
		cfg.IPv6Prefix = 64
	}
	if cfg.IPv4Prefix < 1 || cfg.IPv4Prefix > 32 {
		return nil, fmt.Errorf("IPv4 prefix /%d: want 1-32", cfg.IPv4Prefix)
	}
	if cfg.IPv6Prefix < 1 || cfg.IPv6Prefix > 128 {
		return nil, fmt.Errorf("IPv6 prefix /%d: want 1-128", cfg.IPv6Prefix)
	}
	l := &RateLimiter{
		limit: rate.Limit(cfg.PerSecond), burst: cfg.Burst, perMax: max(cfg.MaxSources/rlShards, 16),
		v4: cfg.IPv4Prefix, v6: cfg.IPv6Prefix, seed: maphash.MakeSeed(),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_rate_limit_forgotten_total",
			Help: "Rate-limit buckets forgotten to make room, each refilled to at least half its burst.",
		}),
		tableFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_rate_limit_table_full_total",
			Help: "Announces from a new source refused because the rate-limit table (--rate_table_size) held only sources being limited.",
		}),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*rate.Limiter)
	}
	if cfg.Registerer != nil {
		sources := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "webswarm_tracker_rate_limit_sources",
			Help: "Sources (IPv4 addresses, IPv6 prefixes) with a rate-limit bucket, at most about --rate_table_size.",
		}, func() float64 { return float64(l.sources()) })
		if err := registerAll(cfg.Registerer, l.forgotten, l.tableFull, sources); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register rate-limit metrics: %w", err)
		}
	}
	return nil
}

// sourceKey is the source addr belongs to: its first v4bits (IPv4) or v6bits (IPv6) bits.
func sourceKey(addr netip.Addr, v4bits, v6bits int) netip.Addr {
	return subnet.Prefix(addr, v4bits, v6bits).Addr()
}

// Allow reports whether a request from addr may go on now.
func (l *RateLimiter) Allow(addr netip.Addr) bool {
	return l.allowAt(addr, time.Now())
}

func (l *RateLimiter) allowAt(addr netip.Addr, now time.Time) bool {
	k := sourceKey(addr, l.v4, l.v6)
	b := k.As16()
	sh := &l.shards[maphash.Bytes(l.seed, b[:])%rlShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lim := sh.m[k]
	if lim == nil {
		if len(sh.m) >= l.perMax && !l.sweep(sh, now) {
			l.tableFull.Inc()
			return false
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		sh.m[k] = lim
	}
	return lim.AllowN(now, 1)
}

// sweep forgets sh's buckets that have refilled to half their burst or more, and reports
// whether it made room. A sweep that frees under 1/16 of the shard holds off the next one
// for a second.
func (l *RateLimiter) sweep(sh *rlShard, now time.Time) bool {
	if now.Before(sh.noSweepUntil) {
		return false
	}
	half := float64(l.burst) / 2
	freed := 0
	for k, lim := range sh.m {
		if lim.TokensAt(now) >= half {
			delete(sh.m, k)
			freed++
		}
	}
	l.forgotten.Add(float64(freed))
	if freed < max(l.perMax/16, 1) {
		sh.noSweepUntil = now.Add(time.Second)
	}
	return freed > 0
}

// sources is the number of buckets held.
func (l *RateLimiter) sources() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
