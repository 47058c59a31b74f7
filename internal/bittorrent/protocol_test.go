package bittorrent

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestProtocolConstants pins the shared constants to the bytes the BEPs give: the tracker
// and seedctl both use them, so their own tests, talking to each other, would not notice
// one going wrong.
func TestProtocolConstants(t *testing.T) {
	// BEP 3: "the handshake starts with character nineteen (decimal) followed by the string
	// 'BitTorrent protocol'".
	hs := append([]byte{19}, "BitTorrent protocol"...)
	if !bytes.Equal([]byte(HandshakePrefix), hs) {
		t.Errorf("HandshakePrefix = %q, want %q", HandshakePrefix, hs)
	}
	// BEP 15: the connect request's protocol_id, 0x41727101980, as the eight bytes sent.
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], UDPProtocolID)
	if want := []byte{0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80}; !bytes.Equal(id[:], want) {
		t.Errorf("UDPProtocolID on the wire = % x, want % x", id, want)
	}
	if got := [4]int{UDPConnect, UDPAnnounce, UDPScrape, UDPError}; got != [4]int{0, 1, 2, 3} {
		t.Errorf("BEP 15 actions connect, announce, scrape, error = %v, want 0 1 2 3", got)
	}
}
