package wire

import (
	"fmt"
	"io"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// protocol is the BEP 3 handshake's first 20 bytes: its length, then the protocol string.
const protocol = bittorrent.HandshakePrefix

// Reserved is the handshake's 8 reserved bytes: one bit per extension.
type Reserved [8]byte

// Reserved bits.
const (
	reservedExtendedByte, reservedExtendedBit = 5, 0x10 // BEP 10
	reservedFastByte, reservedFastBit         = 7, 0x04 // BEP 6
	reservedDHTByte, reservedDHTBit           = 7, 0x01 // BEP 5
)

// DefaultReserved announces the Fast extension and the extension protocol.
var DefaultReserved = Reserved{reservedExtendedByte: reservedExtendedBit, reservedFastByte: reservedFastBit}

// Fast reports the Fast extension bit (BEP 6).
func (r Reserved) Fast() bool { return r[reservedFastByte]&reservedFastBit != 0 }

// Extended reports the extension protocol bit (BEP 10).
func (r Reserved) Extended() bool { return r[reservedExtendedByte]&reservedExtendedBit != 0 }

// DHT reports the DHT bit (BEP 5).
func (r Reserved) DHT() bool { return r[reservedDHTByte]&reservedDHTBit != 0 }

// Handshake is the BEP 3 handshake after the protocol string.
type Handshake struct {
	Reserved Reserved
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
}

// AppendHandshake appends the 68-byte handshake h to b.
func AppendHandshake(b []byte, h *Handshake) []byte {
	b = append(b, protocol...)
	b = append(b, h.Reserved[:]...)
	b = append(b, h.InfoHash[:]...)
	return append(b, h.PeerID[:]...)
}

// readHandshakeHead reads the protocol string, reserved bytes and info-hash (48 bytes):
// a receiver checks the info-hash before it answers, and only then reads the peer ID.
func readHandshakeHead(r io.Reader, h *Handshake) error {
	var b [48]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("wire: read handshake: %w", err)
	}
	if string(b[:20]) != protocol {
		return fmt.Errorf("%w: starts %q", ErrBadProtocol, b[:20])
	}
	copy(h.Reserved[:], b[20:28])
	copy(h.InfoHash[:], b[28:48])
	return nil
}

func readPeerID(r io.Reader, h *Handshake) error {
	if _, err := io.ReadFull(r, h.PeerID[:]); err != nil {
		return fmt.Errorf("wire: read handshake peer id: %w", err)
	}
	return nil
}
