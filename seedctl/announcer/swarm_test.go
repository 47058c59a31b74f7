package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
)

// Tests against the project's real tracker, served in-process.

var transports = []struct {
	name, host string
	udp        bool
}{
	{"http", "127.0.0.1", false},
	{"udp", "127.0.0.1", true},
	{"http6", "::1", false},
	{"udp6", "::1", true},
}

func (rt *realTracker) url(udp bool) string {
	if udp {
		return rt.UDP
	}
	return rt.HTTP
}

func TestTwoAnnouncersSeeEachOther(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			// BEP 15 has no min interval: the announcer then takes half the interval.
			rt := startTracker(t, tc.host, announce.Config{Interval: 2 * time.Second, MinInterval: time.Second})
			ih := hash("two announcers " + tc.name)
			lo := netip.MustParseAddr(tc.host)
			ca := testConfig([][]string{{rt.url(tc.udp)}}, ih, 1)
			a := mustNew(t, ca)
			runAnnouncer(t, a)
			testenv.WaitFor(t, 10*time.Second, "first announce", func() error {
				if st := a.Status(); st.LastAnnounce.IsZero() || st.Err != nil {
					return fmt.Errorf("status %+v", st)
				}
				return nil
			})
			if st := a.Status(); st.Peers != 0 || st.URL != rt.url(tc.udp) {
				t.Errorf("first announcer's status %+v: want no peers from %s", st, rt.url(tc.udp))
			}

			cb := testConfig([][]string{{rt.url(tc.udp)}}, ih, 2)
			b := mustNew(t, cb)
			runAnnouncer(t, b)
			addrA := netip.AddrPortFrom(lo, ca.Port)
			addrB := netip.AddrPortFrom(lo, cb.Port)
			got := waitPeers(t, b, addrA, 10*time.Second)
			if slices.Contains(got, addrB) {
				t.Errorf("b was given its own address: %v", got)
			}
			if st := b.Status(); st.Leechers != 2 || st.Peers != 1 {
				t.Errorf("b's status %+v: want 2 leechers, 1 peer", st)
			}
			// a learns of b at its next announce, which min interval (1 s) allows early.
			a.Announce()
			got = waitPeers(t, a, addrB, 10*time.Second)
			if slices.Contains(got, addrA) {
				t.Errorf("a was given its own address: %v", got)
			}
		})
	}
}

// A peer that listens on the address another announcer registered (Config.Self) never
// gets that address back from the tracker.
func TestSelfAddressFiltered(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour})
	ih := hash("self")
	ca := testConfig([][]string{{rt.HTTP}}, ih, 1)
	cb := testConfig([][]string{{rt.HTTP}}, ih, 2)
	for _, c := range []Config{ca, cb} {
		a := mustNew(t, c)
		runAnnouncer(t, a)
		testenv.WaitFor(t, 10*time.Second, "announce", func() error {
			if a.Status().LastAnnounce.IsZero() {
				return errors.New("not yet")
			}
			return nil
		})
	}
	lo := netip.MustParseAddr("127.0.0.1")
	cc := testConfig([][]string{{rt.HTTP}}, ih, 3)
	cc.Self = []netip.AddrPort{netip.AddrPortFrom(lo, ca.Port), netip.MustParseAddrPort("[::ffff:127.0.0.9]:1")}
	c := mustNew(t, cc)
	runAnnouncer(t, c)
	got := waitPeers(t, c, netip.AddrPortFrom(lo, cb.Port), 10*time.Second)
	if slices.Contains(got, netip.AddrPortFrom(lo, ca.Port)) {
		t.Errorf("peers %v include Config.Self %v", got, cc.Self)
	}
}

func TestCompletedCountsOnce(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour, MinInterval: time.Second})
	ih := hash("completed once")
	var left atomic.Int64
	left.Store(1 << 20)
	cfg := testConfig([][]string{{rt.HTTP}}, ih, 1)
	cfg.Progress = func() Progress { return Progress{Downloaded: 1<<20 - left.Load(), Left: left.Load()} }
	a := mustNew(t, cfg)
	runAnnouncer(t, a)
	waitStatus(t, a, "started", func(st Status) bool { return !st.LastAnnounce.IsZero() })
	left.Store(0)
	a.Completed()
	a.Completed()
	waitRequests(t, "completed", 2, func() int { return len(rt.announces()) }, nil)
	a.Completed()
	waitRequests(t, "a regular announce after completed", 3, func() int { return len(rt.announces()) }, a)
	var events []string
	for _, r := range rt.announces() {
		events = append(events, r.event())
	}
	if want := []string{"started", "completed", ""}; !slices.Equal(events[:3], want) || slices.Contains(events[3:], "completed") {
		t.Errorf("events %q, want %q and no second completed", events, want)
	}
	if r := rt.announces()[1]; r.q.Get("left") != "0" {
		t.Errorf("completed sent left=%s", r.q.Get("left"))
	}
	st, err := Scrape(t.Context(), nil, rt.HTTP, ih)
	if err != nil {
		t.Fatal(err)
	}
	if st.Downloaded != 1 || st.Seeders != 1 || st.Leechers != 0 {
		t.Errorf("scrape %+v: want downloaded 1, 1 seeder, 0 leechers", st)
	}
}

func TestStoppedRemovesPeer(t *testing.T) {
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			rt := startTracker(t, tc.host, announce.Config{Interval: time.Hour})
			ih := hash("stopped " + tc.name)
			u := rt.url(tc.udp)
			var as []*Announcer
			for i := range 2 {
				a := mustNew(t, testConfig([][]string{{u}}, ih, i+1))
				runAnnouncer(t, a)
				as = append(as, a)
			}
			scrape := func(want int) func() error {
				return func() error {
					st, err := Scrape(t.Context(), nil, u, ih)
					if err != nil {
						return err
					}
					if n := st.Seeders + st.Leechers; n != want {
						return fmt.Errorf("%d peers (%+v), want %d", n, st, want)
					}
					return nil
				}
			}
			testenv.WaitFor(t, 10*time.Second, "two peers", scrape(2))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := as[1].Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			select {
			case <-as[1].runDone:
			default:
				t.Error("Run still running after Stop")
			}
			for range as[1].Peers() { // drained, then closed
			}
			testenv.WaitFor(t, 10*time.Second, "one peer", scrape(1))
			if err := as[1].Stop(ctx); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if !tc.udp {
				n := 0
				for _, r := range rt.announces() {
					if r.event() == "stopped" {
						n++
						if r.q.Get("numwant") != "0" {
							t.Errorf("stopped with numwant=%s", r.q.Get("numwant"))
						}
					}
				}
				if n != 1 {
					t.Errorf("%d stopped announces, want 1", n)
				}
			}
			// A newcomer is not given the stopped peer.
			c := mustNew(t, testConfig([][]string{{u}}, ih, 3))
			runAnnouncer(t, c)
			lo := netip.MustParseAddr(tc.host)
			got := waitPeers(t, c, netip.AddrPortFrom(lo, 40001), 10*time.Second)
			if slices.Contains(got, netip.AddrPortFrom(lo, 40002)) {
				t.Errorf("stopped peer handed out: %v", got)
			}
		})
	}
}

// Announce is honoured only once min interval has passed since the last announce.
func TestMinIntervalRespected(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour, MinInterval: time.Second})
	a := mustNew(t, testConfig([][]string{{rt.HTTP}}, hash("min interval"), 1))
	runAnnouncer(t, a)
	waitRequests(t, "an early announce", 2, func() int { return len(rt.announces()) }, a)
	got := rt.announces()
	if gap := got[1].at.Sub(got[0].at); gap < time.Second {
		t.Errorf("early announce %v after the first, under min interval 1s", gap)
	}
	st := a.Status()
	if d := st.NextAnnounce.Sub(st.LastAnnounce); d < 54*time.Minute || d > time.Hour {
		t.Errorf("next regular announce in %v, want the interval (1h) less at most 10%% jitter", d)
	}
}

// With fewer peers than MinPeers, the announcer announces every min interval; with enough,
// it waits for the interval.
func TestMinPeers(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour, MinInterval: time.Second})
	var hungry, fed *Announcer
	for i, peers := range []int{0, 10} {
		cfg := testConfig([][]string{{rt.HTTP}}, hash(fmt.Sprint("min peers", i)), i+1)
		cfg.MinPeers = 5
		cfg.PeerCount = func() int { return peers }
		a := mustNew(t, cfg)
		runAnnouncer(t, a)
		if peers == 0 {
			hungry = a
		} else {
			fed = a
		}
	}
	count := func(a *Announcer) (times []time.Time) {
		for _, r := range rt.announces() {
			if r.q.Get("port") == fmt.Sprint(a.cfg.Port) {
				times = append(times, r.at)
			}
		}
		return times
	}
	testenv.WaitFor(t, 15*time.Second, "three announces while short of peers", func() error {
		if n := len(count(hungry)); n < 3 {
			return fmt.Errorf("%d announces", n)
		}
		return nil
	})
	times := count(hungry)
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < time.Second {
			t.Errorf("announce %d came %v after the previous, under min interval", i, gap)
		}
	}
	if n := len(count(fed)); n != 1 {
		t.Errorf("announcer with enough peers announced %d times, want 1", n)
	}
}

// Refusals of the real tracker (not on its allow list) arrive as failures over both HTTP and
// UDP (BEP 15 error packet).
type denyAll struct{}

func (denyAll) Allowed(bittorrent.InfoHash) bool { return false }

func TestRealTrackerRefusal(t *testing.T) {
	for _, tc := range transports[:2] {
		t.Run(tc.name, func(t *testing.T) {
			rt := startTracker(t, tc.host, announce.Config{Allowed: denyAll{}})
			a := mustNew(t, testConfig([][]string{{rt.url(tc.udp)}}, hash("refused"), 1))
			runAnnouncer(t, a)
			testenv.WaitFor(t, 10*time.Second, "a failure", func() error {
				if a.Status().Failures == 0 {
					return errors.New("no failure yet")
				}
				return nil
			})
			st := a.Status()
			var fe *FailureError
			if !errors.Is(st.Err, ErrFailure) || !errors.As(st.Err, &fe) || fe.Reason != announce.NotAuthorized {
				t.Errorf("status %+v: want a failure %q", st, announce.NotAuthorized)
			}
			if st.Failure != announce.NotAuthorized {
				t.Errorf("Status.Failure %q, want %q", st.Failure, announce.NotAuthorized)
			}
		})
	}
}

// TestStopAfterUnansweredStarted: Stop comes while the "started" announce is out and not yet
// answered. The tracker may have counted us already, so it gets "stopped" all the same (it
// once got nothing, and counted a peer that had left until its timeout).
func TestStopAfterUnansweredStarted(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, func(_ int, q url.Values) (int, string) {
		if q.Get("event") == "started" {
			<-release // not answered before Stop
		}
		return http.StatusOK, "d8:intervali1800e5:peers0:e"
	})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
	a := mustNew(t, testConfig([][]string{{f.URL()}}, hash("unanswered"), 1))
	runAnnouncer(t, a)
	waitRequests(t, "the started announce", 1, func() int { return len(f.requests()) }, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	var events []string
	for _, r := range f.requests() {
		events = append(events, r.q.Get("event"))
	}
	if !slices.Equal(events, []string{"started", "stopped"}) {
		t.Errorf("events %q, want started then stopped", events)
	}
}
