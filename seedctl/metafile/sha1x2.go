package metafile

import "encoding/binary"

// sha1Pair hashes two messages of the same length in lockstep with sha1Block2; callers check
// have2Lane first. Every write is a multiple of 64 bytes, so the padding is one block.
type sha1Pair struct {
	h [2][5]uint32
	n uint64
}

var sha1IV = [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}

func (s *sha1Pair) reset() {
	s.h[0], s.h[1], s.n = sha1IV, sha1IV, 0
}

// write adds a to the first message and b to the second; len(a) == len(b), a multiple of 64.
func (s *sha1Pair) write(a, b []byte) {
	if len(a) != len(b) || len(a)%64 != 0 {
		panic("metafile: sha1Pair.write needs equal lengths, multiples of 64")
	}
	if len(a) == 0 {
		return
	}
	sha1Block2(&s.h[0], &s.h[1], &a[0], &b[0], len(a))
	s.n += uint64(len(a))
}

// sums finishes both messages.
func (s *sha1Pair) sums(a, b *[20]byte) {
	var pad [64]byte
	pad[0] = 0x80
	binary.BigEndian.PutUint64(pad[56:], s.n*8)
	sha1Block2(&s.h[0], &s.h[1], &pad[0], &pad[0], 64)
	for i := range 5 {
		binary.BigEndian.PutUint32(a[4*i:], s.h[0][i])
		binary.BigEndian.PutUint32(b[4*i:], s.h[1][i])
	}
}
