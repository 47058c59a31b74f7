// Package bittorrent holds the identifiers both programs share: info-hashes and peer IDs
// (BEP 3), the client family a peer ID names (the Azureus-style prefix of BEP 20), and the
// protocol constants written on both sides of a connection: the peer handshake's prefix
// (BEP 3) and the UDP tracker protocol's magic and actions (BEP 15).
package bittorrent

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// InfoHash is the 20-byte SHA-1 of a torrent's bencoded info dictionary (BEP 3), or the
// truncated SHA-256 of a v2 torrent's (BEP 52) when used on the v1 wire.
type InfoHash [20]byte

// PeerID is the 20-byte identifier a client picks for itself (BEP 3).
type PeerID [20]byte

// ErrBadLength is returned when an identifier is not exactly 20 bytes long.
var ErrBadLength = errors.New("not 20 bytes")

// InfoHashFromBytes returns b as an InfoHash; b must be 20 bytes long.
func InfoHashFromBytes(b []byte) (InfoHash, error) {
	var ih InfoHash
	if len(b) != len(ih) {
		return ih, fmt.Errorf("info_hash is %d bytes: %w", len(b), ErrBadLength)
	}
	copy(ih[:], b)
	return ih, nil
}

// ParseInfoHash parses 40 hexadecimal digits.
func ParseInfoHash(s string) (InfoHash, error) {
	var ih InfoHash
	if len(s) != 2*len(ih) {
		return ih, fmt.Errorf("info hash %q: want 40 hex digits", s)
	}
	if _, err := hex.Decode(ih[:], []byte(s)); err != nil {
		return ih, fmt.Errorf("info hash %q: %w", s, err)
	}
	return ih, nil
}

// String returns the hash as 40 lower-case hexadecimal digits.
func (ih InfoHash) String() string { return hex.EncodeToString(ih[:]) }

// String returns the peer ID with non-printable bytes escaped, for logs.
func (id PeerID) String() string { return fmt.Sprintf("%q", id[:]) }
