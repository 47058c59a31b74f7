package announce

import (
	"net/netip"
	"testing"
	"time"
)

// 200 addresses of one IPv6 /64 are one source: only the burst gets through.
func TestRateLimiterKeysIPv6ByPrefix(t *testing.T) {
	l := NewRateLimiter(0.001, 10, 1000)
	allowed := 0
	for i := range 200 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 15: byte(i), 14: byte(i >> 3)})
		if l.Allow(a) {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("%d of 200 announces from one /64 allowed, want the burst, 10", allowed)
	}
	if !l.Allow(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("the next /64 refused")
	}
	// IPv4 and IPv4-mapped IPv6 are the same source.
	v4 := netip.MustParseAddr("192.0.2.7")
	for range 10 {
		l.Allow(v4)
	}
	if l.Allow(netip.MustParseAddr("::ffff:192.0.2.7")) {
		t.Error("IPv4-mapped address escapes its IPv4 bucket")
	}
	// A configured IPv4 prefix groups addresses too.
	l24, err := NewRateLimiterConfig(RateLimitConfig{PerSecond: 0.001, Burst: 1, IPv4Prefix: 24})
	if err != nil {
		t.Fatal(err)
	}
	if !l24.Allow(netip.MustParseAddr("198.51.100.1")) || l24.Allow(netip.MustParseAddr("198.51.100.2")) {
		t.Error("--rate_ipv4_prefix 24 does not group a /24")
	}
	for _, bad := range []RateLimitConfig{{PerSecond: 0}, {PerSecond: 1, IPv4Prefix: 33}, {PerSecond: 1, IPv6Prefix: 129}} {
		if _, err := NewRateLimiterConfig(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A flood of new sources into a full table does not reset a source being limited, and the
// table stays bounded.
func TestRateLimiterFloodKeepsHotBuckets(t *testing.T) {
	l := NewRateLimiter(0.001, 10, 64*16)
	hot := netip.MustParseAddr("203.0.113.9")
	for range 10 {
		l.Allow(hot)
	}
	if l.Allow(hot) {
		t.Fatal("request beyond the burst allowed")
	}
	newcomers := 0
	for i := range 100_000 {
		if l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})) {
			newcomers++
		}
	}
	if l.Allow(hot) {
		t.Fatal("a flood of new addresses reset the bucket of a limited source")
	}
	if newcomers != 100_000 {
		t.Errorf("%d of 100000 new sources allowed; sources with tokens left must make room", newcomers)
	}
	if n := l.sources(); n > 64*16 {
		t.Fatalf("rate limiter holds %d sources, bound %d", n, 64*16)
	}
}

// A table full of sources being limited refuses new sources (counted) rather than forget
// them, and sweeps again once buckets refill.
func TestRateLimiterFullOfLimitedSources(t *testing.T) {
	l := NewRateLimiter(1, 1, 64*16)
	now := time.Unix(1e9, 0)
	for i := range 100_000 {
		l.allowAt(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	if l.allowAt(netip.MustParseAddr("192.0.2.1"), now) {
		t.Error("new source allowed into a table of limited ones")
	}
	if got := metricValue(t, l.tableFull); got == 0 {
		t.Error("table-full refusals not counted")
	}
	later := now.Add(2 * time.Second)
	if !l.allowAt(netip.MustParseAddr("192.0.2.1"), later) {
		t.Error("new source refused after the table's buckets refilled")
	}
}

func TestRateLimiterAllowDoesNotAllocate(t *testing.T) {
	l := NewRateLimiter(1e9, 1e9, 1000)
	a := netip.MustParseAddr("2001:db8::1")
	l.Allow(a)
	if n := testing.AllocsPerRun(1000, func() { l.Allow(a) }); n != 0 {
		t.Errorf("Allow of a known source allocates %v times", n)
	}
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	l := NewRateLimiter(1e9, 1e9, 1_000_000)
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Allow(addrs[i&1023])
	}
}
