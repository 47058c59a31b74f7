package picker

import (
	"encoding/binary"
	"math/bits"
)

// bitset holds one bit per piece, most significant bit first within each word, so that a
// BITFIELD payload (piece 0 = bit 7 of byte 0) converts word by word with a big-endian load.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (s bitset) has(i int) bool { return s[i>>6]&(1<<(63-uint(i&63))) != 0 }
func (s bitset) set(i int)      { s[i>>6] |= 1 << (63 - uint(i&63)) }

// wordFromBytes returns word w of a BITFIELD payload for n pieces: missing bytes read as zero
// and bits past piece n-1 are cleared, so a short, long or dirty payload cannot add pieces.
func wordFromBytes(bf []byte, w, n int) uint64 {
	var x uint64
	if o := w * 8; o+8 <= len(bf) {
		x = binary.BigEndian.Uint64(bf[o:])
	} else if o < len(bf) {
		var tmp [8]byte
		copy(tmp[:], bf[o:])
		x = binary.BigEndian.Uint64(tmp[:])
	}
	if last := (n + 63) / 64; w == last-1 && n%64 != 0 {
		x &^= ^uint64(0) >> uint(n%64)
	}
	return x
}

// popBit clears the highest-order bit set in *x and returns its position (0 = most
// significant); *x must not be zero.
func popBit(x *uint64) int {
	b := bits.LeadingZeros64(*x)
	*x &^= 1 << (63 - uint(b))
	return b
}
