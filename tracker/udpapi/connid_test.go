package udpapi

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// TestSipHash checks sipHash4 against the reference vector of SipHash-2-4 for the 32-byte
// message 00 01 … 1f under the key 00 01 … 0f (vectors.h of the reference implementation).
func TestSipHash(t *testing.T) {
	var key, msg [32]byte
	for i := range msg {
		key[i], msg[i] = byte(i), byte(i)
	}
	le := binary.LittleEndian.Uint64
	got := sipHash4(le(key[0:]), le(key[8:]), le(msg[0:]), le(msg[8:]), le(msg[16:]), le(msg[24:]))
	if want := uint64(0x7127512f72f27cce); got != want {
		t.Errorf("SipHash-2-4 = %#x, want %#x", got, want)
	}
}

func TestConnIDs(t *testing.T) {
	ids := newConnIDs(DefaultConnIDLifetime)
	now := time.Unix(1_800_000_000, 0)
	a := netip.MustParseAddrPort("192.0.2.1:6881")
	id := ids.make(a, now)
	for _, tc := range []struct {
		name string
		addr netip.AddrPort
		at   time.Time
		ok   bool
	}{
		{"same address", a, now, true},
		{"IPv4-mapped form of it", netip.MustParseAddrPort("[::ffff:192.0.2.1]:6881"), now, true},
		{"next period", a, now.Add(DefaultConnIDLifetime), true},
		{"two periods on", a, now.Add(2 * DefaultConnIDLifetime), false},
		{"before it was made", a, now.Add(-DefaultConnIDLifetime), false},
		{"another port", netip.MustParseAddrPort("192.0.2.1:6882"), now, false},
		{"another address", netip.MustParseAddrPort("192.0.2.2:6881"), now, false},
		{"IPv6", netip.MustParseAddrPort("[2001:db8::1]:6881"), now, false},
	} {
		if ok := ids.valid(id, tc.addr, tc.at); ok != tc.ok {
			t.Errorf("%s: valid = %v, want %v", tc.name, ok, tc.ok)
		}
	}
	if other := newConnIDs(DefaultConnIDLifetime); other.valid(id, a, now) {
		t.Error("another process's key accepts the ID")
	}
	for x, want := range map[uint64]uint64{0: 1, 1: 0, 1 << 63: 0, ^uint64(0): 0} {
		if got := isZero(x); got != want {
			t.Errorf("isZero(%#x) = %d, want %d", x, got, want)
		}
	}
}

func BenchmarkConnIDValid(b *testing.B) {
	ids := newConnIDs(DefaultConnIDLifetime)
	now := time.Now()
	a := netip.MustParseAddrPort("192.0.2.1:6881")
	id := ids.make(a, now)
	b.ReportAllocs()
	for b.Loop() {
		if !ids.valid(id, a, now) {
			b.Fatal("invalid")
		}
	}
}
