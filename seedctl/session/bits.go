package session

import (
	"math/bits"
	"sync/atomic"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// atomicBits is the torrent's have-set as the readers see it: the loop sets bits as pieces
// are verified, every reader tests them for each REQUEST, without a lock.
type atomicBits struct {
	w []atomic.Uint64
	n int
}

func newAtomicBits(bf *wire.Bitfield) *atomicBits {
	a := &atomicBits{w: make([]atomic.Uint64, (bf.Len()+63)/64), n: bf.Len()}
	for i := range bf.Len() {
		if bf.Has(i) {
			a.set(i)
		}
	}
	return a
}

func (a *atomicBits) has(i uint32) bool {
	return int(i) < a.n && a.w[i>>6].Load()&(1<<(i&63)) != 0
}

func (a *atomicBits) set(i int) { a.w[i>>6].Or(1 << (uint(i) & 63)) }

func (a *atomicBits) clear(i int) { a.w[i>>6].And(^(1 << (uint(i) & 63))) }

// count returns the number of bits set.
func (a *atomicBits) count() int {
	n := 0
	for i := range a.w {
		n += bits.OnesCount64(a.w[i].Load())
	}
	return n
}

// bitfield returns a copy as a wire.Bitfield.
func (a *atomicBits) bitfield() wire.Bitfield {
	bf := wire.NewBitfield(a.n)
	for i := range a.n {
		if a.has(uint32(i)) {
			bf.Set(i)
		}
	}
	return bf
}
