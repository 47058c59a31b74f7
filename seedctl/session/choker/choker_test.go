package choker

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func count(ps []Peer) (unchoked, optimistic int) {
	for _, p := range ps {
		if p.Unchoked {
			unchoked++
		}
		if p.Optimistic {
			optimistic++
		}
	}
	return
}

func interested(n int) []Peer {
	ps := make([]Peer, n)
	for i := range ps {
		ps[i].Interested = true
	}
	return ps
}

func TestSeedRoundRobinServesEveryLeecher(t *testing.T) {
	const slots, leechers = 3, 20
	c := New(Config{Slots: slots, Quota: 1 << 20, Seed: 1})
	ps := interested(leechers)
	served := make([]int, leechers)
	now := t0
	rounds := 0
	for ; rounds < 40; rounds++ {
		c.Rechoke(now, true, ps)
		if u, o := count(ps); u != slots+1 || o != 1 {
			t.Fatalf("round %d: %d unchoked, %d optimistic; want %d and 1", rounds, u, o, slots+1)
		}
		for i := range ps {
			if ps[i].Unchoked {
				served[i]++
				ps[i].Uploaded += 2 << 20 // every holder used up its quota
			}
		}
		now = now.Add(RechokeInterval)
		all := true
		for _, s := range served {
			all = all && s > 0
		}
		if all {
			break
		}
	}
	// 20 leechers, 3 regular slots rotating each round plus the optimistic one: everyone
	// is served within ceil(20/3) = 7 rounds.
	if rounds >= 7 {
		t.Fatalf("every leecher served only after %d rounds: %v", rounds+1, served)
	}
}

func TestSeedKeepsSlotUnderQuota(t *testing.T) {
	c := New(Config{Slots: 2, Quota: 1 << 20, Seed: 2})
	ps := interested(6)
	c.Rechoke(t0, true, ps)
	var held []int
	for i, p := range ps {
		if p.Unchoked && !p.Optimistic {
			held = append(held, i)
		}
	}
	if len(held) != 2 {
		t.Fatalf("regular slots held by %v, want 2 peers", held)
	}
	for _, i := range held {
		ps[i].Uploaded = 1000 // well under the quota
	}
	c.Rechoke(t0.Add(RechokeInterval), true, ps)
	for _, i := range held {
		if !ps[i].Unchoked || ps[i].Optimistic {
			t.Errorf("peer %d lost its regular slot under quota", i)
		}
	}
	// Over quota with peers waiting: both rotate out to the peers that waited longest.
	for _, i := range held {
		ps[i].Uploaded = 2 << 20
	}
	c.Rechoke(t0.Add(2*RechokeInterval), true, ps)
	for _, i := range held {
		if ps[i].Unchoked && !ps[i].Optimistic {
			t.Errorf("peer %d kept its regular slot over quota while others waited", i)
		}
	}
}

// TestSeedIdleSlotRotates: a slot holder far under its quota that takes nothing (Idle)
// gives its slot to a waiting peer.
func TestSeedIdleSlotRotates(t *testing.T) {
	c := New(Config{Slots: 1, Quota: 1 << 20, Seed: 4})
	ps := interested(3)
	c.Rechoke(t0, true, ps)
	holder := -1
	for i, p := range ps {
		if p.Unchoked && !p.Optimistic {
			holder = i
		}
	}
	if holder < 0 {
		t.Fatal("no regular slot given")
	}
	c.Rechoke(t0.Add(RechokeInterval), true, ps)
	if !ps[holder].Unchoked || ps[holder].Optimistic {
		t.Fatalf("peer %d lost its regular slot under quota", holder)
	}
	ps[holder].Idle = true
	c.Rechoke(t0.Add(2*RechokeInterval), true, ps)
	if ps[holder].Unchoked && !ps[holder].Optimistic {
		t.Errorf("idle peer %d kept its regular slot while others waited", holder)
	}
}

func TestSeedOverQuotaKeptWhenNobodyWaits(t *testing.T) {
	c := New(Config{Slots: 3, Quota: 1, Seed: 3})
	ps := interested(2)
	c.Rechoke(t0, true, ps)
	ps[0].Uploaded, ps[1].Uploaded = 100, 100
	c.Rechoke(t0.Add(RechokeInterval), true, ps)
	if !ps[0].Unchoked || !ps[1].Unchoked {
		t.Fatalf("a lone seeder choked leechers with free slots: %+v", ps)
	}
}

func TestLeechTitForTat(t *testing.T) {
	c := New(Config{Slots: 2, Seed: 4})
	ps := interested(5)
	rates := []int64{10, 500, 300, 900, 0}
	for i := range ps {
		ps[i].DownloadRate = rates[i]
	}
	ps[3].Snubbed = true // fastest on paper, but snubbed: last
	c.Rechoke(t0, false, ps)
	for i, want := range []bool{false, true, true, false, false} {
		if got := ps[i].Unchoked && !ps[i].Optimistic; got != want {
			t.Errorf("peer %d (rate %d, snubbed %v): regular slot %v, want %v", i, rates[i], ps[i].Snubbed, got, want)
		}
	}
	if _, o := count(ps); o != 1 {
		t.Errorf("%d optimistic peers, want 1", o)
	}
}

func TestNotInterestedChoked(t *testing.T) {
	c := New(Config{Slots: 4, Seed: 5})
	ps := make([]Peer, 3)
	ps[0].Unchoked = true // was unchoked, lost interest
	c.Rechoke(t0, true, ps)
	if u, _ := count(ps); u != 0 {
		t.Fatalf("%d peers unchoked, none is interested", u)
	}
}

func TestOptimisticRotation(t *testing.T) {
	c := New(Config{Slots: 1, Seed: 6})
	ps := interested(10)
	for i := range ps {
		ps[i].DownloadRate = int64(100 - i) // peer 0 holds the regular slot throughout
	}
	c.Rechoke(t0, false, ps)
	opt := func() int {
		for i, p := range ps {
			if p.Optimistic {
				return i
			}
		}
		return -1
	}
	first := opt()
	if first <= 0 {
		t.Fatalf("optimistic slot held by %d, want a peer outside the regular slot", first)
	}
	// Within the interval the slot stays.
	for k := 1; k <= 2; k++ {
		c.Rechoke(t0.Add(time.Duration(k)*RechokeInterval), false, ps)
		if got := opt(); got != first {
			t.Fatalf("optimistic moved from %d to %d before its interval", first, got)
		}
	}
	// After 30 s it goes to someone else.
	c.Rechoke(t0.Add(DefaultOptimisticInterval), false, ps)
	if got := opt(); got == first || got <= 0 {
		t.Fatalf("optimistic after its interval: %d (was %d)", got, first)
	}
	// Its holder losing interest frees the slot at once.
	cur := opt()
	ps[cur].Interested = false
	c.Rechoke(t0.Add(DefaultOptimisticInterval+time.Second), false, ps)
	if got := opt(); got == cur || got < 0 {
		t.Fatalf("optimistic stayed with a peer that lost interest (%d)", got)
	}
	if ps[cur].Unchoked {
		t.Fatalf("uninterested former optimistic peer still unchoked")
	}
}

func TestZeroSlotsOnlyOptimistic(t *testing.T) {
	c := New(Config{Slots: -1, Seed: 7})
	ps := interested(4)
	c.Rechoke(t0, true, ps)
	if u, o := count(ps); u != 1 || o != 1 {
		t.Fatalf("%d unchoked, %d optimistic; want 1 and 1", u, o)
	}
	if n := c.Fill(t0, true, ps); n != 0 {
		t.Fatalf("Fill unchoked %d peers with no regular slot", n)
	}
}

func TestFillNeverChokes(t *testing.T) {
	c := New(Config{Slots: 2, Seed: 8})
	ps := interested(4)
	ps[0].Unchoked, ps[0].UnchokedAt = true, t0
	ps[0].Uploaded = 1 << 40 // way over quota: Fill keeps it anyway
	if n := c.Fill(t0.Add(time.Second), true, ps); n != 1 {
		t.Fatalf("Fill unchoked %d, want 1 (one free slot)", n)
	}
	if !ps[0].Unchoked {
		t.Fatal("Fill choked a peer")
	}
	if u, _ := count(ps); u != 2 {
		t.Fatalf("%d unchoked, want 2", u)
	}
	for i, p := range ps[1:] {
		if p.Unchoked && (!p.UnchokedAt.Equal(t0.Add(time.Second)) || p.Uploaded != 0) {
			t.Errorf("peer %d unchoked by Fill without its clock reset: %+v", i+1, p)
		}
	}
	if n := c.Fill(t0.Add(2*time.Second), true, ps); n != 0 {
		t.Fatalf("second Fill unchoked %d with no free slot", n)
	}
}

func TestRechokeDeterministicWithSeed(t *testing.T) {
	run := func() []bool {
		c := New(Config{Slots: 2, Seed: 42})
		ps := interested(12)
		var out []bool
		now := t0
		for range 10 {
			c.Rechoke(now, true, ps)
			for i := range ps {
				out = append(out, ps[i].Unchoked, ps[i].Optimistic)
				if ps[i].Unchoked {
					ps[i].Uploaded += DefaultQuota
				}
			}
			now = now.Add(DefaultOptimisticInterval)
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different decisions at %d", i)
		}
	}
}

func BenchmarkRechoke(b *testing.B) {
	c := New(Config{Seed: 9})
	ps := interested(80)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(RechokeInterval)
		c.Rechoke(now, true, ps)
	}
}
