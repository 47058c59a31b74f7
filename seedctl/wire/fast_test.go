package wire

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// The test vector of BEP 6.
func TestAllowedFastSetBEP6(t *testing.T) {
	var ih bittorrent.InfoHash
	copy(ih[:], bytes.Repeat([]byte{0xaa}, 20))
	addr := netip.MustParseAddr("80.4.4.200")
	if got, want := AllowedFastSet(ih, addr, 1313, 7), []uint32{1059, 431, 808, 1217, 287, 376, 1188}; !slices.Equal(got, want) {
		t.Fatalf("k=7: %v, want %v", got, want)
	}
	if got, want := AllowedFastSet(ih, addr, 1313, 9), []uint32{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}; !slices.Equal(got, want) {
		t.Fatalf("k=9: %v, want %v", got, want)
	}
	// Same /24, same set; the mapped form too.
	if got := AllowedFastSet(ih, netip.MustParseAddr("::ffff:80.4.4.1"), 1313, 7); got[0] != 1059 {
		t.Fatalf("same /24: %v", got)
	}
}

func TestAllowedFastSetSmall(t *testing.T) {
	got := AllowedFastSet(bittorrent.InfoHash{1}, netip.MustParseAddr("2001:db8::1"), 3, 10)
	slices.Sort(got)
	if !slices.Equal(got, []uint32{0, 1, 2}) {
		t.Fatalf("k over the piece count: %v", got)
	}
	if AllowedFastSet(bittorrent.InfoHash{}, netip.MustParseAddr("1.2.3.4"), 0, 10) != nil {
		t.Fatal("no pieces: want nil")
	}
}

func TestRequestCheck(t *testing.T) {
	ok := RequestCheck(32<<10, 3*32<<10+100) // 4 pieces, the last of 100 bytes
	tests := []struct {
		index, begin, length uint32
		want                 bool
	}{
		{0, 0, 16384, true},
		{0, 16384, 16384, true},
		{0, 16385, 16384, false},
		{3, 0, 100, true},
		{3, 0, 101, false},
		{3, 99, 1, true},
		{4, 0, 1, false},
		{0, 0, 0, false},
		{0, 0xffffffff, 16384, false}, // no overflow
	}
	for _, tc := range tests {
		if got := ok(tc.index, tc.begin, tc.length); got != tc.want {
			t.Errorf("(%d, %d, %d) = %v", tc.index, tc.begin, tc.length, got)
		}
	}
	if RequestCheck(0, 10)(0, 0, 1) {
		t.Fatal("zero piece length accepted a request")
	}
}
