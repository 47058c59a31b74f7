package picker

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// model is the brute-force truth the property test checks the Picker against.
type model struct {
	n     int
	peers map[*Peer]*modelPeer
	have  []bool
}

type modelPeer struct {
	has  []bool
	seed bool // has every piece, however it was told
}

func (m *model) avail(i int) int {
	a := 0
	for _, mp := range m.peers {
		if mp.seed || mp.has[i] {
			a++
		}
	}
	return a
}

func (m *model) peerHas(mp *modelPeer, i int) bool { return mp.seed || mp.has[i] }

// randomBitfield returns a BITFIELD payload with pieces set at the given density, the model's
// view of it, and dirt in the spare bits (which must be ignored).
func randomBitfield(r *rand.Rand, n int, density float64) ([]byte, []bool) {
	bf := make([]byte, (n+7)/8)
	has := make([]bool, n)
	for i := range n {
		if r.Float64() < density {
			bf[i/8] |= 0x80 >> (i % 8)
			has[i] = true
		}
	}
	if n%8 != 0 {
		bf[len(bf)-1] |= 0xff >> (n % 8)
	}
	return bf, has
}

// TestAvailabilityProperty drives a Picker with random HAVE / BITFIELD / HAVE ALL / gone /
// verify / pick / receive / reject sequences (fixed seeds) and checks after every step its
// availability and have-sets against the brute-force model, its internal invariants, and that
// every pick honours strict priority and rarest first.
func TestAvailabilityProperty(t *testing.T) {
	for _, tc := range []struct {
		pieces int
		plen   int64
		total  int64
		seed   uint64
	}{
		{1, 32 << 10, 20000, 1},
		{7, 16 << 10, 7*(16<<10) - 5, 2},
		{64, 32 << 10, 64 * 32 << 10, 3},
		{65, 48 << 10, 64*(48<<10) + 1, 4},
		{300, 16 << 10, 300 * 16 << 10, 5},
	} {
		r := rand.New(rand.NewPCG(tc.seed, 42))
		p := NewSeeded(tc.pieces, tc.plen, tc.total, tc.seed)
		m := &model{n: tc.pieces, peers: map[*Peer]*modelPeer{}, have: make([]bool, tc.pieces)}
		var live []*Peer
		var out []Block
		picks := map[*Peer][]Block{}
		for step := range 4000 {
			var pp *Peer
			if len(live) > 0 {
				pp = live[r.IntN(len(live))]
			}
			op := r.IntN(12)
			if pp == nil || (op == 0 && len(live) < 12) {
				pp = p.NewPeer()
				live = append(live, pp)
				m.peers[pp] = &modelPeer{has: make([]bool, tc.pieces)}
				continue
			}
			mp := m.peers[pp]
			switch op {
			case 1, 2: // HAVE
				i := r.IntN(tc.pieces)
				p.PeerHave(pp, i)
				mp.has[i] = true
				if !slices.Contains(mp.has, false) {
					mp.seed = true
				}
			case 3: // BITFIELD (replaces)
				bf, has := randomBitfield(r, tc.pieces, []float64{0, 0.1, 0.5, 0.9, 1}[r.IntN(5)])
				p.PeerBitfield(pp, bf)
				mp.has = has
				mp.seed = !slices.Contains(has, false)
			case 4: // HAVE ALL
				if r.IntN(4) == 0 {
					p.PeerHaveAll(pp)
					mp.seed = true
				}
			case 5: // gone
				if r.IntN(3) == 0 {
					p.PeerGone(pp)
					delete(m.peers, pp)
					delete(picks, pp)
					live = slices.DeleteFunc(live, func(q *Peer) bool { return q == pp })
				}
			case 6: // verified from elsewhere (resume, web seed)
				if r.IntN(4) == 0 {
					i := r.IntN(tc.pieces)
					p.PieceVerified(i)
					m.have[i] = true
				}
			case 7, 8, 9: // pick
				before := snapshotCandidates(p, m, mp)
				startedFree := startedFreeFor(p, m, mp)
				out = p.Pick(pp, 1+r.IntN(40), false, out[:0])
				checkPick(t, p, m, mp, before, startedFree, out)
				picks[pp] = append(picks[pp], out...)
			case 10: // receive some, verify full pieces (sometimes failing)
				for _, b := range picks[pp] {
					if r.IntN(2) == 0 {
						continue
					}
					_, full := p.Received(pp, b)
					if full {
						if r.IntN(5) == 0 {
							p.PieceFailed(int(b.Piece))
						} else {
							p.PieceVerified(int(b.Piece))
							m.have[b.Piece] = true
						}
					}
				}
				picks[pp] = picks[pp][:0]
			case 11: // reject or cancel
				for _, b := range picks[pp] {
					if r.IntN(2) == 0 {
						p.Rejected(pp, b)
					} else {
						p.Cancelled(pp, b)
					}
				}
				picks[pp] = picks[pp][:0]
			}
			if err := invariants(p); err != nil {
				t.Fatalf("%d pieces, step %d (op %d): %v", tc.pieces, step, op, err)
			}
			for i := range tc.pieces {
				if got, want := int(p.avail[i])+p.seeds, m.avail(i); got != want {
					t.Fatalf("%d pieces, step %d: piece %d availability %d, model %d", tc.pieces, step, i, got, want)
				}
				if p.Have(i) != m.have[i] {
					t.Fatalf("step %d: piece %d Have %v, model %v", step, i, p.Have(i), m.have[i])
				}
			}
			for q, mq := range m.peers {
				interesting := false
				for i := range tc.pieces {
					if p.PeerHas(q, i) != m.peerHas(mq, i) {
						t.Fatalf("step %d: PeerHas(%d) %v, model %v", step, i, p.PeerHas(q, i), m.peerHas(mq, i))
					}
					interesting = interesting || (m.peerHas(mq, i) && !m.have[i])
				}
				if p.Interesting(q) != interesting {
					t.Fatalf("step %d: Interesting %v, model %v", step, p.Interesting(q), interesting)
				}
			}
		}
	}
}

// snapshotCandidates returns, per candidate piece the peer has, its availability.
func snapshotCandidates(p *Picker, m *model, mp *modelPeer) map[int]int {
	c := map[int]int{}
	for i := range m.n {
		if p.state[i] == candidate && m.peerHas(mp, i) {
			c[i] = m.avail(i)
		}
	}
	return c
}

// startedFreeFor reports whether a started piece the peer has still has a free block.
func startedFreeFor(p *Picker, m *model, mp *modelPeer) bool {
	for _, ps := range p.parts {
		if ps.nFree > 0 && m.peerHas(mp, ps.index) {
			return true
		}
	}
	return false
}

// checkPick asserts that a pick only asked for pieces the peer has and we lack, started new
// pieces only after every started piece was exhausted, and started the rarest ones.
func checkPick(t *testing.T, p *Picker, m *model, mp *modelPeer, before map[int]int, startedFree bool, out []Block) {
	t.Helper()
	newMax := -1
	for _, b := range out {
		i := int(b.Piece)
		if !m.peerHas(mp, i) || m.have[i] {
			t.Fatalf("picked piece %d: peer has %v, we have %v", i, m.peerHas(mp, i), m.have[i])
		}
		if a, ok := before[i]; ok {
			newMax = max(newMax, a)
		}
	}
	if newMax < 0 {
		return
	}
	if startedFree {
		// Fine only if the pieces started before were exhausted first.
		for _, ps := range p.parts {
			if _, isNew := before[ps.index]; !isNew && ps.nFree > 0 && m.peerHas(mp, ps.index) {
				t.Fatalf("piece %d started while started piece %d the peer has had free blocks", int(out[len(out)-1].Piece), ps.index)
			}
		}
	}
	for i, a := range before {
		if p.state[i] == candidate && a < newMax {
			t.Fatalf("started a piece of availability %d while piece %d of availability %d was left", newMax, i, a)
		}
	}
}
