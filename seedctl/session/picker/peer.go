package picker

import (
	"math/bits"
	"slices"
)

// Peer is the Picker's view of one connected peer: the pieces it has, its allowed-fast set
// and how many blocks are outstanding at it. Get one from NewPeer; after PeerGone it is inert
// (every call with it is a no-op and Pick returns nothing).
type Peer struct {
	has         bitset // nil until the first HAVE or BITFIELD; unused while seed
	count       int    // pieces in has
	seed        bool   // has every piece; counted in Picker.seeds, not in avail
	want        int    // pieces in has that we lack (not kept for seeds)
	outstanding int    // blocks requested from it and not yet received, rejected or cancelled
	allowed     []uint32
	idx         int // in Picker.peers; -1 once gone
}

// NewPeer registers a peer that has nothing yet.
func (p *Picker) NewPeer() *Peer {
	pp := &Peer{idx: len(p.peers)}
	p.peers = append(p.peers, pp)
	return pp
}

func (pp *Peer) gone() bool { return pp.idx < 0 }

// PeerHas reports whether pp has piece i.
func (p *Picker) PeerHas(pp *Peer, i int) bool {
	if i < 0 || i >= p.numPieces || pp.gone() {
		return false
	}
	return pp.seed || (pp.has != nil && pp.has.has(i))
}

// Interesting reports whether pp has a piece we lack (whether to send INTERESTED).
func (p *Picker) Interesting(pp *Peer) bool {
	if pp.gone() {
		return false
	}
	if pp.seed {
		return !p.Done()
	}
	return pp.want > 0
}

// PeerHave records a HAVE from pp. An index out of range is ignored (the wire layer refuses
// it first). A peer whose HAVEs complete the set becomes a seed.
func (p *Picker) PeerHave(pp *Peer, i int) {
	if i < 0 || i >= p.numPieces || pp.gone() || pp.seed {
		return
	}
	if pp.has == nil {
		pp.has = newBitset(p.numPieces)
	}
	if pp.has.has(i) {
		return
	}
	pp.has.set(i)
	pp.count++
	if !p.have.has(i) {
		pp.want++
	}
	p.availUp(i)
	if pp.count == p.numPieces {
		p.makeSeed(pp)
	}
}

// PeerHaveAll records a HAVE ALL (BEP 6) from pp: it is counted once as a seed.
func (p *Picker) PeerHaveAll(pp *Peer) {
	if pp.gone() || pp.seed {
		return
	}
	p.makeSeed(pp)
}

// PeerBitfield REPLACES pp's have-set with the BITFIELD payload bf (bit 7 of byte 0 is piece
// 0), whenever it arrives: aria2 sends a BITFIELD in the middle of a connection instead of
// many HAVEs. Missing bytes count as zero and spare bits are ignored. A full set makes pp a
// seed; a seed sending an incomplete one stops being one. Cost: O(pieces/64 + bits changed).
func (p *Picker) PeerBitfield(pp *Peer, bf []byte) {
	if pp.gone() {
		return
	}
	words := len(p.have)
	n := 0
	for w := range words {
		n += bits.OnesCount64(wordFromBytes(bf, w, p.numPieces))
	}
	if n == p.numPieces {
		if !pp.seed {
			p.makeSeed(pp)
		}
		return
	}
	if pp.seed {
		p.seeds--
		pp.seed = false
	}
	if pp.has == nil {
		pp.has = newBitset(p.numPieces)
	}
	for w := range words {
		old, nw := pp.has[w], wordFromBytes(bf, w, p.numPieces)
		pp.has[w] = nw
		for diff := old ^ nw; diff != 0; {
			i := w*64 + popBit(&diff)
			if nw&(1<<(63-uint(i&63))) != 0 {
				pp.count++
				if !p.have.has(i) {
					pp.want++
				}
				p.availUp(i)
			} else {
				pp.count--
				if !p.have.has(i) {
					pp.want--
				}
				p.availDown(i)
			}
		}
	}
}

// makeSeed turns pp into a seed: its per-piece availability is withdrawn and it is counted
// once in seeds.
func (p *Picker) makeSeed(pp *Peer) {
	p.dropHas(pp)
	pp.seed = true
	p.seeds++
}

// dropHas withdraws pp's per-piece availability and empties its have-set.
func (p *Picker) dropHas(pp *Peer) {
	if pp.has == nil {
		return
	}
	for w, x := range pp.has {
		for x != 0 {
			p.availDown(w*64 + popBit(&x))
		}
		pp.has[w] = 0
	}
	pp.count, pp.want = 0, 0
}

// SetAllowedFast records the allowed-fast set pp sent us (BEP 6 ALLOWED FAST messages; the
// caller appends as they come and passes the whole set). Indexes out of range are dropped.
func (p *Picker) SetAllowedFast(pp *Peer, pieces []uint32) {
	if pp.gone() {
		return
	}
	pp.allowed = pp.allowed[:0]
	for _, i := range pieces {
		if int64(i) < int64(p.numPieces) && !slices.Contains(pp.allowed, i) {
			pp.allowed = append(pp.allowed, i)
		}
	}
}

func (pp *Peer) allowedFast(i int) bool { return slices.Contains(pp.allowed, uint32(i)) }

// Outstanding is the number of blocks requested from pp that are not yet received, rejected
// or cancelled.
func (p *Picker) Outstanding(pp *Peer) int { return pp.outstanding }

// PeerGone forgets pp: its blocks go back to the pool (pieces nothing was received for become
// candidates again) and the availability it contributed is withdrawn.
func (p *Picker) PeerGone(pp *Peer) {
	if pp.gone() {
		return
	}
	if pp.seed {
		p.seeds--
		pp.seed = false
	} else {
		p.dropHas(pp)
	}
	pp.has = nil
	last := p.peers[len(p.peers)-1]
	last.idx = pp.idx
	p.peers[pp.idx] = last
	p.peers[len(p.peers)-1] = nil
	p.peers = p.peers[:len(p.peers)-1]
	pp.idx = -1
	for _, ps := range p.parts {
		if ps.owner == pp {
			ps.owner = nil
		}
		if pp.outstanding == 0 {
			continue
		}
		for j := range ps.blocks {
			p.unrequest(ps, j, pp)
		}
	}
	p.dropIdle()
}

// dropIdle drops every idle started piece (see dropIfIdle).
func (p *Picker) dropIdle() {
	for k := 0; k < len(p.parts); {
		if ps := p.parts[k]; ps.nReceived == 0 && ps.nFree == len(ps.blocks) {
			p.dropIfIdle(ps) // removes parts[k]
			continue
		}
		k++
	}
}
