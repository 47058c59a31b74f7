// Package choker decides which peers a torrent uploads to: the choking algorithm of BEP 3
// ("The BitTorrent Protocol Specification", section "Choking and optimistic unchoking").
//
// A fixed number of regular upload slots (mainline's --max-uploads) plus one optimistic slot
// that rotates every 30 seconds to a random interested peer, so newcomers get a chance.
// How the regular slots are filled depends on what the torrent is doing:
//
//   - Leeching: tit-for-tat. The peers that upload fastest to us get the slots; snubbed
//     peers (they stopped answering our requests) rank last.
//   - Seeding: round robin, like libtorrent's round-robin seed choking. A slot is kept until
//     its holder has received Quota bytes, or takes nothing (Idle); then it goes to the
//     interested peer that has waited longest since it was last unchoked, so every
//     leecher gets served in turn.
//
// The package is pure logic: no I/O, no clock of its own, no goroutines. The session copies
// its peers' state into a slice of Peer, calls Rechoke (every 10 seconds) or Fill (when a
// peer becomes interested), and sends CHOKE or UNCHOKE where Unchoked changed. A Choker is
// not safe for concurrent use; a torrent's event loop owns it.
package choker

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"
)

// Defaults of Config.
const (
	// DefaultSlots is mainline's --max-uploads.
	DefaultSlots = 7
	// DefaultOptimisticInterval is how long the optimistic slot stays with one peer (BEP 3
	// says every 30 seconds).
	DefaultOptimisticInterval = 30 * time.Second
	// DefaultQuota is what a seed uploads to one regular slot holder before the slot may
	// rotate to a waiting peer.
	DefaultQuota = 16 << 20
	// RechokeInterval is how often the session calls Rechoke (BEP 3: every 10 seconds).
	RechokeInterval = 10 * time.Second
)

// Config sets the choker's parameters; zero fields take the defaults.
type Config struct {
	// Slots is the number of regular upload slots (--max-uploads); the optimistic slot
	// comes on top. Negative means none.
	Slots int
	// OptimisticInterval is how long the optimistic slot stays with one peer.
	OptimisticInterval time.Duration
	// Quota is the number of bytes a seeding slot holder receives before its slot may go
	// to a peer that is waiting.
	Quota int64
	// Seed seeds the random source that picks the optimistic peer (tests fix it); 0 picks
	// one at random.
	Seed uint64
}

// Peer is the choker's view of one connection. The session fills the inputs before each
// call; Rechoke and Fill set Unchoked and Optimistic, and reset UnchokedAt and Uploaded for
// a peer they unchoke. The session keeps Unchoked, Optimistic, UnchokedAt and Uploaded
// between calls (they are the choker's memory of each peer) and updates Uploaded as it
// sends data.
type Peer struct {
	// Interested: the peer wants data we have. Peers that are not interested are choked.
	Interested bool
	// Unchoked: we let the peer download. Input: the current state; output: the decision.
	Unchoked bool
	// Optimistic: the peer holds the optimistic slot. Input and output.
	Optimistic bool
	// UnchokedAt is when the peer was last unchoked; the seed's round robin serves the
	// peer that has waited longest first. The session sets it to the connect time for a
	// new peer, so that one that reconnects queues behind those already waiting.
	UnchokedAt time.Time
	// Uploaded is what we sent the peer since UnchokedAt (the seed's quota).
	Uploaded int64
	// DownloadRate is what the peer sends us, in bytes per second (tit-for-tat).
	DownloadRate int64
	// Snubbed: the peer has not answered our requests for a while (leeching only: it
	// ranks after every peer that does).
	Snubbed bool
	// Idle: the peer holds a slot but has taken none of our data for a while (it asks
	// for nothing, or does not read). Seeding, it ranks as one that had its quota: its
	// slot goes to a peer that is waiting.
	Idle bool
}

// Choker holds the choking state that is not per peer: when the optimistic slot last
// rotated, and the random source.
type Choker struct {
	cfg        Config
	rng        *rand.Rand
	lastRotate time.Time
	order      []int // scratch: peer indexes by rank
	cands      []int // scratch: optimistic candidates
}

// New returns a Choker with cfg, defaults filled in.
func New(cfg Config) *Choker {
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.Slots < 0 {
		cfg.Slots = 0
	}
	if cfg.OptimisticInterval <= 0 {
		cfg.OptimisticInterval = DefaultOptimisticInterval
	}
	if cfg.Quota <= 0 {
		cfg.Quota = DefaultQuota
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Choker{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Slots is the number of regular slots.
func (c *Choker) Slots() int { return c.cfg.Slots }

// rank orders the interested peers, best candidate for a regular slot first.
func (c *Choker) rank(seeding bool, ps []Peer) []int {
	c.order = c.order[:0]
	for i := range ps {
		if ps[i].Interested {
			c.order = append(c.order, i)
		}
	}
	if seeding {
		class := func(p *Peer) int {
			switch {
			case p.Unchoked && p.Uploaded < c.cfg.Quota && !p.Idle:
				return 0 // serving and under its quota: keep
			case !p.Unchoked:
				return 1 // waiting
			}
			return 2 // had its share, or takes nothing: rotates out when someone waits
		}
		slices.SortStableFunc(c.order, func(a, b int) int {
			pa, pb := &ps[a], &ps[b]
			if r := cmp.Compare(class(pa), class(pb)); r != 0 {
				return r
			}
			return pa.UnchokedAt.Compare(pb.UnchokedAt) // longest wait first
		})
		return c.order
	}
	slices.SortStableFunc(c.order, func(a, b int) int {
		pa, pb := &ps[a], &ps[b]
		if pa.Snubbed != pb.Snubbed {
			if pa.Snubbed {
				return 1
			}
			return -1
		}
		if r := cmp.Compare(pb.DownloadRate, pa.DownloadRate); r != 0 {
			return r
		}
		if pa.Unchoked != pb.Unchoked { // equal rates: no churn
			if pa.Unchoked {
				return -1
			}
			return 1
		}
		return pa.UnchokedAt.Compare(pb.UnchokedAt)
	})
	return c.order
}

// Rechoke is the periodic decision (every RechokeInterval): it fills the regular slots by
// rank, rotates the optimistic slot when its interval has passed (or its holder left, lost
// interest or earned a regular slot), and chokes everyone else. It returns the number of
// peers whose Unchoked changed.
func (c *Choker) Rechoke(now time.Time, seeding bool, ps []Peer) int {
	order := c.rank(seeding, ps)
	regular := order[:min(c.cfg.Slots, len(order))]
	inRegular := func(i int) bool {
		for _, r := range regular {
			if r == i {
				return true
			}
		}
		return false
	}
	opt := -1
	for i := range ps {
		if ps[i].Optimistic && ps[i].Interested && !inRegular(i) {
			opt = i
			break
		}
	}
	if opt < 0 || now.Sub(c.lastRotate) >= c.cfg.OptimisticInterval {
		if next := c.pickOptimistic(ps, regular, opt); next != opt {
			c.lastRotate = now
			opt = next
		}
	}
	changed := 0
	for i := range ps {
		p := &ps[i]
		unchoke := i == opt || inRegular(i)
		p.Optimistic = i == opt
		if unchoke && !p.Unchoked {
			p.UnchokedAt, p.Uploaded = now, 0
		}
		if unchoke != p.Unchoked {
			changed++
		}
		p.Unchoked = unchoke
	}
	return changed
}

// pickOptimistic picks at random an interested peer outside the regular slots, preferring
// peers that are choked (they are the ones the slot exists for); cur is the current holder,
// picked again only when nobody else qualifies. -1 when nobody qualifies.
func (c *Choker) pickOptimistic(ps []Peer, regular []int, cur int) int {
	c.cands = c.cands[:0]
	rest := c.order[len(regular):]
	for _, i := range rest {
		if i != cur && !ps[i].Unchoked {
			c.cands = append(c.cands, i)
		}
	}
	if len(c.cands) == 0 {
		for _, i := range rest {
			if i != cur {
				c.cands = append(c.cands, i)
			}
		}
	}
	if len(c.cands) == 0 {
		if cur >= 0 && ps[cur].Interested {
			return cur
		}
		return -1
	}
	return c.cands[c.rng.IntN(len(c.cands))]
}

// Fill unchokes interested peers into free regular slots, best ranked first, and never
// chokes anyone: call it when a peer becomes interested, so it need not wait for the next
// Rechoke. It returns the number of peers it unchoked.
func (c *Choker) Fill(now time.Time, seeding bool, ps []Peer) int {
	used := 0
	for i := range ps {
		if ps[i].Unchoked && !ps[i].Optimistic && ps[i].Interested {
			used++
		}
	}
	n := 0
	for _, i := range c.rank(seeding, ps) {
		if used >= c.cfg.Slots {
			break
		}
		p := &ps[i]
		if p.Unchoked {
			continue
		}
		p.Unchoked, p.Optimistic = true, false
		p.UnchokedAt, p.Uploaded = now, 0
		used++
		n++
	}
	return n
}
