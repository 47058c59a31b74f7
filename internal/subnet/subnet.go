// Package subnet gives the network a client address stands for, which is what per-address
// limits count by: one subscriber is usually given one IPv4 address, but a whole IPv6 /64,
// so counting IPv6 addresses one by one would let a single host take every slot.
package subnet

import "net/netip"

// Of is a's subscriber network: the IPv4 address itself (also when written IPv4-mapped),
// or the IPv6 /64 it is in.
func Of(a netip.Addr) netip.Prefix { return Prefix(a, 32, 64) }

// Prefix is a's first v4bits (IPv4, IPv4-mapped included) or v6bits (IPv6) bits, without
// a zone. Bits out of range keep the whole address.
func Prefix(a netip.Addr, v4bits, v6bits int) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return p
}
