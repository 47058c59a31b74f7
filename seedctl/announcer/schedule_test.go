package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/benc"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
)

// waitStatus polls a's Status until cond accepts one, and returns it.
func waitStatus(t *testing.T, a *Announcer, what string, cond func(Status) bool) Status {
	t.Helper()
	var st Status
	testenv.WaitFor(t, 10*time.Second, what, func() error {
		st = a.Status()
		if !cond(st) {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	return st
}

// Failures back off 15 s·2ⁿ (here 200 ms·2ⁿ) with jitter, and a success resets the count.
func TestBackoffGrowsAndResets(t *testing.T) {
	const base = 200 * time.Millisecond
	f := startFake(t, func(i int, _ url.Values) (int, string) {
		switch {
		case i < 3:
			return 200, string(benc.Failure(nil, "go away"))
		case i == 3:
			return 200, okReply(1, 1, "")
		}
		return 503, ""
	})
	cfg := testConfig([][]string{{f.URL()}}, hash("backoff"), 1)
	cfg.Backoff = base
	cfg.Interval = time.Hour
	a := mustNew(t, cfg)
	runAnnouncer(t, a)
	for n := 1; n <= 3; n++ {
		st := waitStatus(t, a, fmt.Sprintf("failure %d", n), func(st Status) bool { return st.Failures == n })
		d, hi := st.NextAnnounce.Sub(st.LastAnnounce), base<<(n-1)
		if d < hi/2 || d > hi {
			t.Errorf("after failure %d: retry in %v, want %v..%v", n, d, hi/2, hi)
		}
		var fe *FailureError
		if st.Failure != "go away" || !errors.As(st.Err, &fe) {
			t.Errorf("after failure %d: status %+v", n, st)
		}
	}
	st := waitStatus(t, a, "success", func(st Status) bool { return st.Failures == 0 })
	if st.Err != nil || st.Failure != "" {
		t.Errorf("after success: status %+v", st)
	}
	if d := st.NextAnnounce.Sub(st.LastAnnounce); d < 900*time.Millisecond || d > time.Second {
		t.Errorf("after success: next in %v, want the interval (1 s) less at most 10%%", d)
	}
	st = waitStatus(t, a, "failure after success", func(st Status) bool { return st.Failures > 0 })
	if st.Failures != 1 {
		t.Errorf("failures %d after a success, want 1", st.Failures)
	}
	if d := st.NextAnnounce.Sub(st.LastAnnounce); d < base/2 || d > base {
		t.Errorf("first failure after success: retry in %v, want %v..%v (reset)", d, base/2, base)
	}
	var se *StatusError
	if !errors.As(st.Err, &se) || se.Code != 503 || st.Failure != "" {
		t.Errorf("status %+v: want HTTP 503 and no failure reason", st)
	}
	// The tracker saw the retries no sooner than the back-off allowed.
	reqs := f.requests()
	for i := 1; i < 4; i++ {
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < (base<<(i-1))/2 {
			t.Errorf("retry %d after %v, under %v", i, gap, (base<<(i-1))/2)
		}
	}
}

// The back-off never exceeds the announce interval.
func TestBackoffCappedAtInterval(t *testing.T) {
	f := startFake(t, func(int, url.Values) (int, string) { return 500, "" })
	cfg := testConfig([][]string{{f.URL()}}, hash("cap"), 1)
	cfg.Backoff = time.Hour
	cfg.Interval = time.Second
	a := mustNew(t, cfg)
	runAnnouncer(t, a)
	for n := 1; n <= 2; n++ {
		st := waitStatus(t, a, fmt.Sprint("failure ", n), func(st Status) bool { return st.Failures == n })
		if d := st.NextAnnounce.Sub(st.LastAnnounce); d < 500*time.Millisecond || d > time.Second {
			t.Errorf("retry in %v, want 0.5..1 s (capped at the interval)", d)
		}
	}
}

// BEP 12: a whole tier failing moves on to the next tier; every round starts again at the
// first tier; a tracker that answers is promoted to the front of its tier.
func TestTiers(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour, MinInterval: time.Second})
	bad1 := startFake(t, func(int, url.Values) (int, string) { return 500, "" })
	bad2 := startFake(t, func(int, url.Values) (int, string) { return 200, "not bencode" })
	refused := fmt.Sprintf("http://127.0.0.1:%d/announce", testenv.FreePort(t, "127.0.0.1"))
	a := mustNew(t, testConfig([][]string{{bad1.URL(), bad2.URL()}, {refused, rt.HTTP}}, hash("tiers"), 1))
	runAnnouncer(t, a)
	waitStatus(t, a, "an answer", func(st Status) bool { return !st.LastAnnounce.IsZero() })
	if st := a.Status(); st.URL != rt.HTTP || st.Err != nil {
		t.Fatalf("status %+v: want the real tracker of tier 2 to have answered", st)
	}
	if len(bad1.requests()) != 1 || len(bad2.requests()) != 1 {
		t.Errorf("tier 1 saw %d and %d announces, want 1 each", len(bad1.requests()), len(bad2.requests()))
	}
	a.mu.Lock()
	front := a.tiers[1][0].raw
	a.mu.Unlock()
	if front != rt.HTTP {
		t.Errorf("tier 2 begins with %s after the real tracker answered", front)
	}
	waitRequests(t, "second round", 2, func() int { return len(rt.announces()) }, a)
	if len(bad1.requests()) != 2 || len(bad2.requests()) != 2 {
		t.Errorf("second round: tier 1 saw %d and %d announces, want 2 each", len(bad1.requests()), len(bad2.requests()))
	}
	var events []string
	for _, r := range rt.announces() {
		events = append(events, r.event())
	}
	if !slices.Equal(events, []string{"started", ""}) {
		t.Errorf("real tracker's events %q", events)
	}
	if got := bad1.requests()[1].event(); got != "started" {
		t.Errorf("a tracker that never answered got event %q, want started", got)
	}
}

// A tracker that answers moves to the front of its tier: the dead one before it is not
// tried again.
func TestTierPromotion(t *testing.T) {
	dead := startFake(t, func(int, url.Values) (int, string) { return 502, "" })
	good := startFake(t, func(int, url.Values) (int, string) { return 200, okReply(1, 1, "") })
	a := mustNew(t, testConfig([][]string{{dead.URL(), good.URL()}}, hash("promotion"), 1))
	// Undo the shuffle: the dead tracker comes first.
	if a.tiers[0][0].raw != dead.URL() {
		a.tiers[0][0], a.tiers[0][1] = a.tiers[0][1], a.tiers[0][0]
	}
	runAnnouncer(t, a)
	waitRequests(t, "three rounds", 3, func() int { return len(good.requests()) }, a)
	if n := len(dead.requests()); n != 1 {
		t.Errorf("dead tracker tried %d times, want once (before the promotion)", n)
	}
}

// Each tier is shuffled once, at New.
func TestTierShuffle(t *testing.T) {
	var tier []string
	for i := range 8 {
		tier = append(tier, fmt.Sprintf("http://t%d.example/announce", i))
	}
	moved := false
	for range 20 {
		a := mustNew(t, testConfig([][]string{tier, {"udp://last.example:1"}}, hash("shuffle"), 1))
		var got []string
		for _, tr := range a.tiers[0] {
			got = append(got, tr.raw)
		}
		if s := slices.Sorted(slices.Values(got)); !slices.Equal(s, tier) {
			t.Fatalf("tier %v is not a permutation of %v", got, tier)
		}
		moved = moved || !slices.Equal(got, tier)
		if len(a.tiers) != 2 || a.tiers[1][0].raw != "udp://last.example:1" {
			t.Fatalf("tiers mixed: %v", a.tiers)
		}
	}
	if !moved {
		t.Error("20 shuffles of 8 trackers all kept the given order")
	}
}

// Stop sends stopped, in parallel, to every tracker that registered us, even one that has
// since failed.
func TestStopParallel(t *testing.T) {
	var mu sync.Mutex
	stopped := map[string]bool{}
	both := make(chan struct{})
	handler := func(name string, failAfter int) func(int, url.Values) (int, string) {
		return func(i int, q url.Values) (int, string) {
			if q.Get("event") == "stopped" {
				mu.Lock()
				stopped[name] = true
				if len(stopped) == 2 {
					close(both)
				}
				mu.Unlock()
				select {
				case <-both: // the other stopped arrived while this one was pending
					return 200, "de"
				case <-time.After(5 * time.Second):
					return 500, ""
				}
			}
			if i >= failAfter {
				return 500, ""
			}
			return 200, okReply(1, 1, "")
		}
	}
	x := startFake(t, handler("x", 1))
	y := startFake(t, handler("y", 100))
	a := mustNew(t, testConfig([][]string{{x.URL()}, {y.URL()}}, hash("stop"), 1))
	runAnnouncer(t, a)
	waitStatus(t, a, "x answered", func(st Status) bool { return st.URL == x.URL() && st.Err == nil })
	a.Announce()
	waitStatus(t, a, "y answered", func(st Status) bool { return st.URL == y.URL() && st.Err == nil })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v (the stopped announces were not sent in parallel)", err)
	}
}

// Stop returns when its context ends, whatever the tracker does.
func TestStopBounded(t *testing.T) {
	hang := make(chan struct{})
	f := startFake(t, func(i int, q url.Values) (int, string) {
		if q.Get("event") == "stopped" {
			<-hang // a tracker that never answers (until the test ends)
		}
		return 200, okReply(60, 30, "")
	})
	t.Cleanup(func() { close(hang) }) // before the server's Close, which waits for handlers
	a := mustNew(t, testConfig([][]string{{f.URL()}}, hash("stop bounded"), 1))
	runAnnouncer(t, a)
	waitStatus(t, a, "an answer", func(st Status) bool { return !st.LastAnnounce.IsZero() })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := a.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop: %v, want the context's deadline", err)
	}
}

// Stop without Run, or before any tracker answered, sends nothing.
func TestStopWithoutRun(t *testing.T) {
	f := startFake(t, func(int, url.Values) (int, string) { return 200, okReply(60, 30, "") })
	a := mustNew(t, testConfig([][]string{{f.URL()}}, hash("no run"), 1))
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.Run(t.Context()) // returns at once after Stop
	if _, ok := <-a.Peers(); ok {
		t.Error("Peers not closed after Run returned")
	}
	a.Run(t.Context()) // a second call returns at once too
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// Peers delivered while nobody reads are merged, never blocking the announcer.
func TestDeliverMerges(t *testing.T) {
	a := mustNew(t, testConfig([][]string{{"http://x.example/announce"}}, hash("deliver"), 1))
	a.Peers() // makes the channel, as Run does before it delivers
	p := func(s ...string) (out []netipAddrPort) {
		for _, x := range s {
			out = append(out, mustAddrPort(x))
		}
		return out
	}
	a.deliver(p("10.0.0.1:1", "10.0.0.2:1"))
	a.deliver(p("10.0.0.2:1", "10.0.0.3:1"))
	a.deliver(nil)
	got := <-a.Peers()
	if want := p("10.0.0.2:1", "10.0.0.3:1", "10.0.0.1:1"); !slices.Equal(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
	select {
	case extra := <-a.Peers():
		t.Errorf("second batch %v", extra)
	default:
	}
	var many []netipAddrPort
	for i := range 3000 {
		many = append(many, mustAddrPort(fmt.Sprintf("10.1.%d.%d:1", i/256, i%256)))
	}
	a.deliver(many)
	a.deliver(p("10.0.0.9:9"))
	if got := <-a.Peers(); len(got) != maxPending || got[0] != mustAddrPort("10.0.0.9:9") {
		t.Errorf("merged %d peers starting %v, want %d starting with the newest", len(got), got[0], maxPending)
	}
}

// A tracker's interval shorter than its own min interval: the min interval wins.
func TestIntervalNeverUnderMinInterval(t *testing.T) {
	f := startFake(t, func(int, url.Values) (int, string) { return 200, okReply(1, 120, "") })
	a := mustNew(t, testConfig([][]string{{f.URL()}}, hash("interval under min"), 1))
	runAnnouncer(t, a)
	st := waitStatus(t, a, "an answer", func(st Status) bool { return !st.LastAnnounce.IsZero() })
	if d := st.NextAnnounce.Sub(st.LastAnnounce); d < 2*time.Minute {
		t.Errorf("next announce in %v, under the min interval (2 min)", d)
	}
}
