package wire

import (
	"fmt"
	"math/bits"
)

// Bitfield is a set of piece indexes in the BITFIELD message's layout (BEP 3): bit 7 of
// byte 0 is piece 0, and the bits after the last piece ("spare bits") are zero. Its length
// is fixed by the number of pieces; Set, Clear and Has panic on an index past the end, like
// a slice.
type Bitfield struct {
	b []byte
	n int // number of pieces
	c int // number of bits set
}

// NewBitfield returns an empty bitfield for n pieces.
func NewBitfield(n int) Bitfield {
	return Bitfield{b: make([]byte, BitfieldLen(n)), n: n}
}

// BitfieldLen is the number of bytes of a BITFIELD for n pieces.
func BitfieldLen(n int) int { return (n + 7) / 8 }

// ParseBitfield checks that b is a valid BITFIELD payload for n pieces (the right length
// and no spare bit set) and returns it as a Bitfield holding a copy of b.
func ParseBitfield(b []byte, n int) (Bitfield, error) {
	if err := CheckBitfield(b, n); err != nil {
		return Bitfield{}, err
	}
	bf := Bitfield{b: append([]byte(nil), b...), n: n}
	bf.recount()
	return bf, nil
}

// CheckBitfield reports whether b is a valid BITFIELD payload for n pieces: exactly
// BitfieldLen(n) bytes, and zero spare bits after the last piece.
func CheckBitfield(b []byte, n int) error {
	if len(b) != BitfieldLen(n) {
		return fmt.Errorf("%w: %d bytes for %d pieces, want %d", ErrBadBitfield, len(b), n, BitfieldLen(n))
	}
	if spare := n % 8; spare != 0 && b[len(b)-1]&(0xff>>spare) != 0 {
		return fmt.Errorf("%w: spare bits set after piece %d", ErrBadBitfield, n-1)
	}
	return nil
}

// Len is the number of pieces the bitfield covers.
func (bf *Bitfield) Len() int { return bf.n }

// Count is the number of pieces set.
func (bf *Bitfield) Count() int { return bf.c }

// Full reports whether every piece is set (a seed's bitfield).
func (bf *Bitfield) Full() bool { return bf.c == bf.n }

// Has reports whether piece i is set.
func (bf *Bitfield) Has(i int) bool {
	bf.check(i)
	return bf.b[i>>3]&(0x80>>(i&7)) != 0
}

// Set adds piece i; it reports whether i was new.
func (bf *Bitfield) Set(i int) bool {
	bf.check(i)
	m := byte(0x80 >> (i & 7))
	if bf.b[i>>3]&m != 0 {
		return false
	}
	bf.b[i>>3] |= m
	bf.c++
	return true
}

// Clear removes piece i; it reports whether i was set.
func (bf *Bitfield) Clear(i int) bool {
	bf.check(i)
	m := byte(0x80 >> (i & 7))
	if bf.b[i>>3]&m == 0 {
		return false
	}
	bf.b[i>>3] &^= m
	bf.c--
	return true
}

// SetAll sets every piece (HAVE ALL, BEP 6), leaving the spare bits zero.
func (bf *Bitfield) SetAll() {
	for i := range bf.b {
		bf.b[i] = 0xff
	}
	if spare := bf.n % 8; spare != 0 {
		bf.b[len(bf.b)-1] = ^byte(0xff >> spare)
	}
	bf.c = bf.n
}

// ClearAll removes every piece (HAVE NONE, BEP 6).
func (bf *Bitfield) ClearAll() {
	clear(bf.b)
	bf.c = 0
}

// Replace overwrites the set with a BITFIELD payload for the same number of pieces, after
// checking it. A BITFIELD received mid-connection replaces the peer's have-set (aria2 sends
// one instead of many HAVEs).
func (bf *Bitfield) Replace(b []byte) error {
	if err := CheckBitfield(b, bf.n); err != nil {
		return err
	}
	copy(bf.b, b)
	bf.recount()
	return nil
}

// Bytes returns the BITFIELD payload. It aliases the bitfield: do not modify it.
func (bf *Bitfield) Bytes() []byte { return bf.b }

func (bf *Bitfield) recount() {
	c := 0
	for _, x := range bf.b {
		c += bits.OnesCount8(x)
	}
	bf.c = c
}

func (bf *Bitfield) check(i int) {
	if uint(i) >= uint(bf.n) {
		panic(fmt.Sprintf("wire: piece %d out of range [0,%d)", i, bf.n))
	}
}
