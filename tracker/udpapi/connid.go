package udpapi

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// connIDs makes and checks BEP 15 connection IDs without remembering clients: an ID is
// SipHash-2-4, under a per-process random key, of the client's address, port and the
// current period number. An ID from the current or the previous period is accepted.
type connIDs struct {
	k0, k1 uint64
	period int64 // nanoseconds
}

func newConnIDs(lifetime time.Duration) *connIDs {
	var k [16]byte
	rand.Read(k[:]) // never fails (crypto/rand, Go 1.24+)
	return &connIDs{
		k0:     binary.LittleEndian.Uint64(k[:8]),
		k1:     binary.LittleEndian.Uint64(k[8:]),
		period: int64(lifetime),
	}
}

func (c *connIDs) bucket(now time.Time) uint64 { return uint64(now.UnixNano() / c.period) }

// id is the connection ID for addr in period b.
func (c *connIDs) id(addr netip.AddrPort, b uint64) uint64 {
	// The IPv4-mapped form of an IPv4 address, so that a dual-stack socket's ::ffff:a.b.c.d
	// and a v4 socket's a.b.c.d get the same ID.
	ip := addr.Addr().Unmap().As16()
	return sipHash4(c.k0, c.k1,
		binary.LittleEndian.Uint64(ip[:8]),
		binary.LittleEndian.Uint64(ip[8:]),
		uint64(addr.Port()),
		b)
}

// make returns the connection ID to send addr now.
func (c *connIDs) make(addr netip.AddrPort, now time.Time) uint64 {
	return c.id(addr, c.bucket(now))
}

// valid reports whether id is addr's ID for now's period or the previous one. It always
// computes both and compares without branching on the ID, so its time says nothing about
// how close a guess was.
func (c *connIDs) valid(id uint64, addr netip.AddrPort, now time.Time) bool {
	b := c.bucket(now)
	return isZero(c.id(addr, b)^id)|isZero(c.id(addr, b-1)^id) == 1
}

// isZero is 1 when x is 0, else 0, without a branch.
func isZero(x uint64) uint64 { return ((x | -x) >> 63) ^ 1 }

// sipHash4 is SipHash-2-4 (Aumasson and Bernstein) of the 32-byte message whose
// little-endian words are m0..m3, under the key k0, k1.
func sipHash4(k0, k1, m0, m1, m2, m3 uint64) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	// The four message words, then the final block: the length (32) in the top byte.
	for _, m := range [...]uint64{m0, m1, m2, m3, 32 << 56} {
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
