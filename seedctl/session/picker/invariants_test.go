package picker

import (
	"fmt"
	"math/bits"
	"slices"
	"testing"
)

// checkInvariants verifies every redundant structure of p against the facts it caches.
func checkInvariants(t testing.TB, p *Picker) {
	t.Helper()
	if err := invariants(p); err != nil {
		t.Fatal(err)
	}
}

func invariants(p *Picker) error {
	n := p.numPieces
	for k, i := range p.order {
		if p.pos[i] != int32(k) {
			return fmt.Errorf("pos[%d] = %d, order[%d] = %d", i, p.pos[i], k, i)
		}
	}
	if p.start[len(p.start)-1] != int32(n) {
		return fmt.Errorf("sentinel %d, want %d", p.start[len(p.start)-1], n)
	}
	for b := 0; b+1 < len(p.start); b++ {
		if p.start[b] > p.start[b+1] {
			return fmt.Errorf("bucket %d starts at %d after bucket %d at %d", b, p.start[b], b+1, p.start[b+1])
		}
		for k := p.start[b]; k < p.start[b+1]; k++ {
			i := p.order[k]
			if p.state[i] != candidate || p.avail[i] != int32(b) {
				return fmt.Errorf("piece %d in bucket %d: state %d avail %d", i, b, p.state[i], p.avail[i])
			}
		}
	}
	for k := int32(0); k < p.start[0]; k++ {
		if i := p.order[k]; p.state[i] == candidate {
			return fmt.Errorf("candidate %d in the non-candidate region", i)
		}
	}
	avail := make([]int32, n)
	seeds := 0
	for x, pp := range p.peers {
		if pp.idx != x {
			return fmt.Errorf("peer %d has idx %d", x, pp.idx)
		}
		if pp.seed {
			seeds++
			continue
		}
		count, want := 0, 0
		if pp.has != nil {
			for i := range n {
				if pp.has.has(i) {
					avail[i]++
					count++
					if !p.have.has(i) {
						want++
					}
				}
			}
			for _, w := range pp.has[len(pp.has)-1:] {
				if n%64 != 0 && bits.TrailingZeros64(w) < 64-n%64 {
					return fmt.Errorf("peer %d has spare bits set", x)
				}
			}
		}
		if count != pp.count || want != pp.want {
			return fmt.Errorf("peer %d count %d want %d, cached %d %d", x, count, want, pp.count, pp.want)
		}
	}
	if seeds != p.seeds {
		return fmt.Errorf("seeds %d, cached %d", seeds, p.seeds)
	}
	nHave := 0
	for i := range n {
		if avail[i] != p.avail[i] {
			return fmt.Errorf("piece %d availability %d, cached %d", i, avail[i], p.avail[i])
		}
		if p.have.has(i) != (p.state[i] == had) {
			return fmt.Errorf("piece %d have bit %v, state %d", i, p.have.has(i), p.state[i])
		}
		if p.have.has(i) {
			nHave++
		}
		if (p.partOf[i] != nil) != (p.state[i] == started) {
			return fmt.Errorf("piece %d: state %d, partial %v", i, p.state[i], p.partOf[i] != nil)
		}
		if p.state[i] == candidate && i < p.runFrom {
			return fmt.Errorf("candidate %d below runFrom %d", i, p.runFrom)
		}
	}
	if nHave != p.nHave {
		return fmt.Errorf("have %d, cached %d", nHave, p.nHave)
	}
	out := map[*Peer]int{}
	free := 0
	for _, ps := range p.parts {
		if p.partOf[ps.index] != ps {
			return fmt.Errorf("partial %d not indexed", ps.index)
		}
		nf, nr := 0, 0
		for j, b := range ps.blocks {
			switch {
			case b.done:
				nr++
				if b.req != nil || len(b.more) > 0 {
					return fmt.Errorf("piece %d block %d done and requested", ps.index, j)
				}
			case b.req == nil:
				nf++
				if len(b.more) > 0 || j < ps.next {
					return fmt.Errorf("piece %d block %d free with extra requesters or below next %d", ps.index, j, ps.next)
				}
			default:
				seen := []*Peer{b.req}
				out[b.req]++
				for _, q := range b.more {
					if slices.Contains(seen, q) {
						return fmt.Errorf("piece %d block %d requested twice from one peer", ps.index, j)
					}
					seen = append(seen, q)
					out[q]++
				}
			}
		}
		if nf != ps.nFree || nr != ps.nReceived {
			return fmt.Errorf("piece %d free %d received %d, cached %d %d", ps.index, nf, nr, ps.nFree, ps.nReceived)
		}
		if nr == 0 && nf == len(ps.blocks) {
			return fmt.Errorf("piece %d idle but kept started", ps.index)
		}
		free += nf
	}
	if free != p.freeParts {
		return fmt.Errorf("free blocks %d, cached %d", free, p.freeParts)
	}
	for _, pp := range p.peers {
		if out[pp] != pp.outstanding {
			return fmt.Errorf("peer %d outstanding %d, cached %d", pp.idx, out[pp], pp.outstanding)
		}
		delete(out, pp)
	}
	for pp, c := range out {
		return fmt.Errorf("gone peer still has %d outstanding blocks (cached %d)", c, pp.outstanding)
	}
	return nil
}
