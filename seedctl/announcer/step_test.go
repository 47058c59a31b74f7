package announcer

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/webswarm/webswarm/tracker/announce"
)

// TestStepAnnouncesOnlyWhenDue drives an Announcer without Run: the first Step sends
// "started" and hands back the peers, a Step before the interval sends nothing and names the
// same due time, and Stop still sends "stopped".
func TestStepAnnouncesOnlyWhenDue(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{})
	ih := hash("step driven")
	other := testConfig([][]string{{rt.HTTP}}, ih, 2)
	b := mustNew(t, other)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, next := b.Step(ctx); next.IsZero() {
		t.Fatal("Step of a fresh Announcer returned no next time")
	}

	a := mustNew(t, testConfig([][]string{{rt.HTTP}}, ih, 1))
	before := time.Now()
	peers, next := a.Step(ctx)
	if len(peers) != 1 || peers[0].Port() != other.Port {
		t.Fatalf("first Step peers %v, want the other peer on port %d", peers, other.Port)
	}
	if !next.After(before.Add(time.Minute)) {
		t.Errorf("next announce %v after the first, want about the tracker's interval", next.Sub(before))
	}
	n := len(rt.announces())
	peers2, next2 := a.Step(ctx)
	if peers2 != nil || !next2.Equal(next) {
		t.Errorf("Step before due: peers %v next %v, want none and %v", peers2, next2, next)
	}
	if got := len(rt.announces()); got != n {
		t.Errorf("Step before due sent %d announces", got-n)
	}
	if ev := rt.announces()[n-1].event(); ev != "started" {
		t.Errorf("first Step sent event %q, want started", ev)
	}
	select {
	case p := <-a.Peers():
		t.Errorf("Step delivered %v on Peers too; its caller has them", p)
	default:
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if ev := rt.announces()[len(rt.announces())-1].event(); ev != "stopped" {
		t.Errorf("Stop after Step sent %q, want stopped", ev)
	}
	if p, next := a.Step(ctx); p != nil || !next.IsZero() {
		t.Errorf("Step after Stop: %v %v, want nothing", p, next)
	}
}

// TestStepFailureBacksOff: a failed round is reported in Status and the next Step is due
// after the back-off, not at once (a scheduler calling Step in a loop must not hammer).
func TestStepFailureBacksOff(t *testing.T) {
	f := startFake(t, func(int, url.Values) (int, string) { return 200, "d14:failure reason20:unregistered torrente" })
	a := mustNew(t, testConfig([][]string{{f.URL()}}, hash("step failure"), 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, next := a.Step(ctx)
	if st := a.Status(); st.Failure != "unregistered torrent" || st.Failures != 1 {
		t.Errorf("status after a refused Step: %+v", st)
	}
	if d := next.Sub(start); d < 50*time.Millisecond {
		t.Errorf("next Step due %v after a failure, want the back-off (>= 50ms)", d)
	}
	if _, _ = a.Step(ctx); len(f.requests()) != 1 {
		t.Errorf("a Step during back-off sent a request (%d in all)", len(f.requests()))
	}
}
