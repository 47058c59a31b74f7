package picker

import "slices"

// Pick appends to dst up to n blocks to request from pp and returns it. In order:
//
//  1. free blocks of pieces pp started itself, then of other started pieces pp has (strict
//     priority: finish what is started before starting anything new);
//  2. blocks of new pieces pp has, rarest first, ties broken at random (while choked:
//     allowedFastOnly, only pp's allowed-fast pieces, in the order pp sent them);
//  3. in endgame (every missing block some peer has is outstanding or reserved by a web-seed
//     run), blocks outstanding at other peers, those requested once first, never a block
//     already outstanding at pp.
//
// Pick never returns a piece we have or one reserved by a web-seed run. With dst reused it
// does not allocate.
func (p *Picker) Pick(pp *Peer, n int, allowedFastOnly bool, dst []Block) []Block {
	if n <= 0 || pp.gone() || p.Done() {
		return dst
	}
	want := len(dst) + n
	ok := func(i int) bool {
		return p.PeerHas(pp, i) && (!allowedFastOnly || pp.allowedFast(i))
	}

	// 1. Started pieces; meanwhile note whether any free block anyone could serve is left.
	freeLeft := false
	for _, own := range [2]bool{true, false} {
		for _, ps := range p.parts {
			if ps.nFree == 0 || (ps.owner == pp) != own {
				continue
			}
			if !ok(ps.index) {
				freeLeft = freeLeft || p.reachable(ps.index)
				continue
			}
			dst = p.takeFree(pp, ps, dst, want)
			if len(dst) == want {
				return dst
			}
		}
	}

	// 2. New pieces.
	if allowedFastOnly {
		for _, i := range pp.allowed {
			if p.state[i] != candidate || !p.PeerHas(pp, int(i)) {
				continue
			}
			dst = p.takeFree(pp, p.startPiece(int(i), pp), dst, want)
			if len(dst) == want {
				return dst
			}
		}
	} else if pp.seed || pp.has != nil {
		// A non-seed has none of bucket 0 (pieces no non-seed has): skip it.
		k := p.start[0]
		if !pp.seed {
			k = p.start[1]
		}
		for ; int(k) < p.numPieces; k++ {
			i := int(p.order[k])
			if !pp.seed && !pp.has.has(i) {
				continue
			}
			// startPiece moves i out of the candidates; what lands at position k comes from
			// a bucket at or below k's and was scanned or skipped already, so k+1 is next.
			dst = p.takeFree(pp, p.startPiece(i, pp), dst, want)
			if len(dst) == want {
				return dst
			}
		}
	}

	// 3. Endgame.
	if freeLeft || p.candidatesReachable() {
		return dst
	}
	for _, once := range [2]bool{true, false} {
		for _, ps := range p.parts {
			if !ok(ps.index) {
				continue
			}
			for j := range ps.blocks {
				b := &ps.blocks[j]
				if b.done || b.req == nil || b.req == pp || (once && len(b.more) > 0) || b.requestedBy(pp) {
					continue
				}
				b.more = append(b.more, pp)
				pp.outstanding++
				dst = append(dst, p.blockAt(ps.index, j))
				if len(dst) == want {
					return dst
				}
			}
		}
	}
	return dst
}

// reachable reports whether some connected peer has piece i.
func (p *Picker) reachable(i int) bool { return p.seeds > 0 || p.avail[i] > 0 }

// candidatesReachable reports whether some connected peer has a candidate piece.
func (p *Picker) candidatesReachable() bool {
	if p.seeds > 0 {
		return int(p.start[0]) < p.numPieces
	}
	return int(p.start[1]) < p.numPieces
}

// takeFree appends free blocks of ps to dst, requested from pp, until dst holds want.
func (p *Picker) takeFree(pp *Peer, ps *partial, dst []Block, want int) []Block {
	for j := ps.next; j < len(ps.blocks) && ps.nFree > 0 && len(dst) < want; j++ {
		b := &ps.blocks[j]
		if b.done || b.req != nil {
			continue
		}
		b.req = pp
		ps.nFree--
		p.freeParts--
		pp.outstanding++
		ps.next = j + 1
		dst = append(dst, p.blockAt(ps.index, j))
	}
	return dst
}

func (b *block) requestedBy(pp *Peer) bool {
	if b.req == pp {
		return true
	}
	for _, q := range b.more {
		if q == pp {
			return true
		}
	}
	return false
}

// unrequest removes pp from block j's requesters; a block left with none is free again.
func (p *Picker) unrequest(ps *partial, j int, pp *Peer) bool {
	b := &ps.blocks[j]
	switch {
	case b.req == pp:
		if n := len(b.more); n > 0 {
			b.req = b.more[n-1]
			b.more[n-1] = nil
			b.more = b.more[:n-1]
		} else {
			b.req = nil
		}
	default:
		k := -1
		for x, q := range b.more {
			if q == pp {
				k = x
				break
			}
		}
		if k < 0 {
			return false
		}
		n := len(b.more)
		b.more[k] = b.more[n-1]
		b.more[n-1] = nil
		b.more = b.more[:n-1]
	}
	pp.outstanding--
	if b.req == nil && !b.done {
		ps.nFree++
		p.freeParts++
		ps.next = min(ps.next, j)
	}
	return true
}

// Wants reports whether the data of block b is still wanted: b is a block of a started piece
// and not yet received. Call it before storing a PIECE message's data: blocks of pieces not
// being downloaded, already received or malformed (wrong length or offset) are refused.
func (p *Picker) Wants(b Block) bool {
	ps, j, ok := p.lookup(b)
	return ok && !ps.blocks[j].done
}

// Received records block b as received from pp (whether or not it was requested from pp: a
// block that arrives after its CANCEL is still good). It returns the other peers b was still
// outstanding at, to send CANCEL to (the slice is reused by the next call), and whether the
// piece now has every block (verify it, then call PieceVerified or PieceFailed). A block not
// Wanted is ignored.
func (p *Picker) Received(pp *Peer, b Block) (cancel []*Peer, pieceFull bool) {
	ps, j, ok := p.lookup(b)
	if !ok || ps.blocks[j].done {
		return nil, false
	}
	blk := &ps.blocks[j]
	p.cancel = p.cancel[:0]
	if blk.req == nil {
		ps.nFree--
		p.freeParts--
	} else {
		blk.req.outstanding--
		if blk.req != pp {
			p.cancel = append(p.cancel, blk.req)
		}
		for _, q := range blk.more {
			q.outstanding--
			if q != pp {
				p.cancel = append(p.cancel, q)
			}
		}
		clear(blk.more)
		blk.req, blk.more = nil, blk.more[:0]
	}
	blk.done = true
	ps.nReceived++
	if !pp.gone() && !slices.Contains(ps.from, pp) {
		ps.from = append(ps.from, pp)
	}
	if len(p.cancel) == 0 {
		return nil, ps.nReceived == len(ps.blocks)
	}
	return p.cancel, ps.nReceived == len(ps.blocks)
}

// Rejected returns block b, refused by pp (BEP 6 REJECT REQUEST, or a choke without the Fast
// extension), to the pool. Blocks not outstanding at pp are ignored.
func (p *Picker) Rejected(pp *Peer, b Block) {
	ps, j, ok := p.lookup(b)
	if !ok || ps.blocks[j].done {
		return
	}
	if p.unrequest(ps, j, pp) {
		p.dropIfIdle(ps)
	}
}

// Cancelled returns block b, given up at pp (snubbed, timed out, CANCEL sent), to the pool.
// A late arrival of it is still accepted by Received.
func (p *Picker) Cancelled(pp *Peer, b Block) { p.Rejected(pp, b) }
