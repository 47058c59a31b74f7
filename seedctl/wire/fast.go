package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// AllowedFastSet returns the k pieces (fewer if the torrent has fewer) that BEP 6's
// canonical algorithm assigns to a peer at addr for torrent ih of numPieces pieces: the
// pieces a seed may let that peer download while it is choked (ALLOWED FAST). Every client
// computes the same set, so a peer can anticipate it. BEP 6 specifies IPv4 only (the /24
// network); for IPv6 this hashes the 16 bytes of the /48 network instead, a choice of ours
// that no peer relies on.
func AllowedFastSet(ih bittorrent.InfoHash, addr netip.Addr, numPieces, k int) []uint32 {
	if numPieces <= 0 || k <= 0 {
		return nil
	}
	k = min(k, numPieces)
	var x []byte
	if addr.Is4() || addr.Is4In6() {
		ip := addr.Unmap().As4()
		ip[3] = 0 // the /24 network: one set per subnet, not per address
		x = append(ip[:], ih[:]...)
	} else {
		ip := addr.As16()
		clear(ip[6:]) // the /48 network
		x = append(ip[:], ih[:]...)
	}
	set := make([]uint32, 0, k)
	for len(set) < k {
		sum := sha1.Sum(x)
		x = sum[:]
		for i := 0; i < 5 && len(set) < k; i++ {
			index := binary.BigEndian.Uint32(x[i*4:]) % uint32(numPieces)
			if !containsIndex(set, index) {
				set = append(set, index)
			}
		}
	}
	return set
}

func containsIndex(set []uint32, v uint32) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// RequestCheck returns a Limits.ValidRequest for a torrent of total bytes cut in pieces of
// pieceLength: a REQUEST must name an existing piece and lie inside it (the last piece is
// shorter).
func RequestCheck(pieceLength, total int64) func(index, begin, length uint32) bool {
	if pieceLength <= 0 || total <= 0 {
		return func(uint32, uint32, uint32) bool { return false }
	}
	numPieces := (total + pieceLength - 1) / pieceLength
	return func(index, begin, length uint32) bool {
		if int64(index) >= numPieces || length == 0 {
			return false
		}
		size := min(pieceLength, total-int64(index)*pieceLength)
		return int64(begin)+int64(length) <= size
	}
}
