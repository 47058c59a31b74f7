package e2e

// End-to-end test of --max_announce_rate (issue 12, item 10) against the built tracker. IPv6
// loopback is one address, so the clients' IPv6 addresses come through the trusted-proxy
// path (X-Real-IP from 127.0.0.1); with NAT check off nothing connects to them.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/webswarm/webswarm/internal/testenv"
)

func TestRateLimitIPv6PrefixAndFlood(t *testing.T) {
	// 0.01 announces/s: bursts of 10, and a drained bucket does not refill during the test.
	tp := startTracker(t, "--max_announce_rate", "0.01", "--rate_table_size", "1024", "--logfile", "")
	var ih [20]byte
	copy(ih[:], "ratelimit-prefix-e2e")
	q := func(i int) string { return announceQuery(ih, fmt.Sprintf("-RATE00-%012d", i), 6881, 1, "compact=1") }

	// 200 addresses of one /64 are one source: the burst gets through, no more.
	failed := 0
	for i := range 200 {
		failed += ncPipeline(t, tp, fmt.Sprintf("2001:db8:1:2::%x", i+1), []string{q(i)})
	}
	if failed != 190 {
		t.Errorf("%d of 200 announces from one /64 refused, want 190 (burst 10)", failed)
	}

	// A limited source stays limited while a flood of new sources (each /64 once) passes
	// through a full table: they make room among themselves, not by resetting it.
	hot := "2001:db8:9:9::1"
	var drain []string
	for i := range 11 {
		drain = append(drain, q(1000+i))
	}
	if f := ncPipeline(t, tp, hot, drain); f != 1 {
		t.Fatalf("%d of 11 announces refused, want 1", f)
	}
	floodFailed := 0
	for i := range 5000 {
		floodFailed += ncPipeline(t, tp, fmt.Sprintf("2001:db8:%x:%x::1", 0x100+i/4096, i%4096), []string{q(2000 + i)})
	}
	if floodFailed != 0 {
		t.Errorf("%d of 5000 new sources refused; sources with tokens left must make room", floodFailed)
	}
	if f := ncPipeline(t, tp, hot, []string{q(9999)}); f != 1 {
		t.Error("the flood of new sources reset the limited source's bucket")
	}
	if v := ncMetric(t, tp, "webswarm_tracker_rate_limit_sources"); v > 1024 {
		t.Errorf("rate limiter holds %v sources, --rate_table_size 1024", v)
	}
	if v := ncMetric(t, tp, "webswarm_tracker_rate_limit_forgotten_total"); v == 0 {
		t.Error("no bucket forgotten during the flood")
	}
	if v := ncMetric(t, tp, `webswarm_tracker_failures_total{reason="rate_limited"}`); v != 192 {
		t.Errorf("rate_limited failures %v, want 192", v)
	}
}

// The NAT-check and rate-limit flags are documented, and a bad value stops start-up with a
// message naming the flag.
func TestTrackerNATAndRateFlags(t *testing.T) {
	help, code := tpRun(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, tc := range []struct{ flag, bad string }{
		{"nat_check_mode", "syn"}, {"nat_check_timeout", "0"}, {"nat_check_queue", "-5"},
		{"nat_check_per_ip", "0"}, {"rate_ipv4_prefix", "0"}, {"rate_ipv6_prefix", "200"}, {"rate_table_size", "0"},
	} {
		if !strings.Contains(help, "-"+tc.flag+" ") {
			t.Errorf("--help does not document --%s", tc.flag)
		}
		out, code := tpRun(t, "--"+tc.flag, tc.bad, "--port", "1")
		if code == 0 || !strings.Contains(out, "--"+tc.flag+" ") {
			t.Errorf("--%s %s: exit %d, output %q; want a failure naming the flag", tc.flag, tc.bad, code, testenv.Tail([]byte(out), 300))
		}
	}
}
