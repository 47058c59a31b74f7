package subnet

import (
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"}, // IPv4-mapped is the IPv4 client
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"}, // same subscriber
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := Of(netip.MustParseAddr(tc.addr)); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Of(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if a, b := Of(netip.MustParseAddr("2001:db8:1:2::1")), Of(netip.MustParseAddr("2001:db8:1:3::1")); a == b {
		t.Errorf("two /64s share a key: %s", a)
	}
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		v4, v6 int
		want   string
	}{
		{"192.0.2.200", 24, 48, "192.0.2.0/24"},
		{"2001:db8:aa:bb::1", 24, 48, "2001:db8:aa::/48"},
		{"192.0.2.200", 40, 48, "192.0.2.200/32"}, // out of range: the whole address
	} {
		if got := Prefix(netip.MustParseAddr(tc.addr), tc.v4, tc.v6); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Prefix(%s, %d, %d) = %s, want %s", tc.addr, tc.v4, tc.v6, got, tc.want)
		}
	}
}
