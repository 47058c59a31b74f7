package picker

// The candidate order: every piece sits in one flat array, order, with pos its inverse.
// Positions [0, start[0]) hold the pieces that are not candidates (had, started, or reserved
// by a web-seed run); after them come the candidates (missing and untouched) grouped by
// availability: bucket b, the candidates exactly b non-seed peers have, is
// [start[b], start[b+1]). start always ends with a sentinel equal to len(order), so bucket b
// exists while b+1 < len(start).
//
// Moving a piece one bucket up or down swaps it with the bucket boundary and moves the
// boundary: O(1). Moving a piece out of the candidates (or back) crosses every lower bucket:
// O(availability), which is bounded by the number of peers. Whenever a piece enters a bucket it
// is swapped with a random member of that bucket, so order inside a bucket is random and no
// two Pickers (nor two peers in one swarm) drift to the same piece order.

func (p *Picker) swap(a, b int32) {
	if a == b {
		return
	}
	x, y := p.order[a], p.order[b]
	p.order[a], p.order[b] = y, x
	p.pos[x], p.pos[y] = b, a
}

// bucketEnd is one past the last position of bucket b.
func (p *Picker) bucketEnd(b int32) int32 { return p.start[b+1] }

// growBuckets makes sure bucket b exists.
func (p *Picker) growBuckets(b int32) {
	for int(b)+1 >= len(p.start) {
		p.start = append(p.start, int32(len(p.order)))
	}
}

// shuffleIn swaps piece i, just moved into bucket b, with a random member of b.
func (p *Picker) shuffleIn(i int32, b int32) {
	lo, hi := p.start[b], p.bucketEnd(b)
	if hi-lo > 1 {
		p.swap(p.pos[i], lo+p.rng.Int32N(hi-lo))
	}
}

// availUp records one more non-seed peer having piece i.
func (p *Picker) availUp(i int) {
	a := p.avail[i]
	p.avail[i] = a + 1
	if p.state[i] != candidate {
		return
	}
	p.growBuckets(a + 1)
	// Last of bucket a becomes first of bucket a+1.
	p.swap(p.pos[i], p.start[a+1]-1)
	p.start[a+1]--
	p.shuffleIn(int32(i), a+1)
}

// availDown records one non-seed peer fewer having piece i.
func (p *Picker) availDown(i int) {
	a := p.avail[i]
	p.avail[i] = a - 1
	if p.state[i] != candidate {
		return
	}
	// First of bucket a becomes last of bucket a-1.
	p.swap(p.pos[i], p.start[a])
	p.start[a]++
	p.shuffleIn(int32(i), a-1)
}

// leaveCandidates moves candidate i into the non-candidate region and sets its state. A scan
// of the order standing at i's position may continue at the next position: the pieces
// displaced into i's old position come from buckets below it (see Pick).
func (p *Picker) leaveCandidates(i int, st pieceState) {
	for b := p.avail[i]; b >= 0; b-- {
		p.swap(p.pos[i], p.start[b])
		p.start[b]++
	}
	p.state[i] = st
}

// enterCandidates moves non-candidate i back into the bucket of its availability.
func (p *Picker) enterCandidates(i int) {
	a := p.avail[i]
	p.growBuckets(a)
	p.swap(p.pos[i], p.start[0]-1)
	p.start[0]--
	for b := int32(1); b <= a; b++ {
		p.swap(p.pos[i], p.start[b]-1)
		p.start[b]--
	}
	p.state[i] = candidate
	p.shuffleIn(int32(i), a)
	p.runFrom = min(p.runFrom, i)
}
