package wire

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// Extension names of the BEP 10 "m" dictionary this package knows.
const (
	// UTMetadata is BEP 9's extension: fetching the info dictionary from peers.
	UTMetadata = "ut_metadata"
)

// ExtendedHandshake is the dictionary of the extended handshake (BEP 10, extended message
// id 0). Every field is optional on the wire.
type ExtendedHandshake struct {
	// M maps extension names to the message id the sender wants to receive them with;
	// 0 means the sender does not (or no longer) support it.
	M map[string]int `bencode:"m"`
	// V is the client's name and version ("webswarm 0.1"), for display only.
	V string `bencode:"v,omitempty"`
	// Reqq is how many outstanding REQUESTs the sender queues without dropping; 0 when
	// absent (measured: libtorrent 2.0.8 sends 2000, aria2 1.36 sends none; BEP 10 says
	// assume 250 then).
	Reqq int `bencode:"reqq,omitempty"`
	// P is the sender's TCP listen port (an incoming peer's source port is not it).
	P int `bencode:"p,omitempty"`
	// YourIP is the receiver's address as the sender sees it: 4 or 16 bytes (use
	// SetYourIP and YourAddr).
	YourIP []byte `bencode:"yourip,omitempty"`
	// MetadataSize is the info dictionary's length in bytes (BEP 9), 0 when unknown.
	MetadataSize int `bencode:"metadata_size,omitempty"`
}

// MaxMetadataSize bounds an announced metadata_size (and BEP 9 total_size): 32 MiB holds
// the info dictionary of a torrent with over a million pieces.
const MaxMetadataSize = 32 << 20

// SetYourIP sets YourIP to addr in its 4- or 16-byte form.
func (h *ExtendedHandshake) SetYourIP(addr netip.Addr) {
	if addr.Is4() || addr.Is4In6() {
		a := addr.Unmap().As4()
		h.YourIP = a[:]
		return
	}
	a := addr.As16()
	h.YourIP = a[:]
}

// YourAddr returns YourIP as an address, invalid when absent or malformed.
func (h *ExtendedHandshake) YourAddr() netip.Addr {
	a, _ := netip.AddrFromSlice(h.YourIP)
	return a
}

// Encode returns the handshake's bencoded dictionary, the payload of extended message 0.
func (h *ExtendedHandshake) Encode() ([]byte, error) {
	m := h.M
	if m == nil {
		m = map[string]int{} // "m" is required by BEP 10, even empty
	}
	c := *h
	c.M = m
	b, err := bencode.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("wire: encode extended handshake: %w", err)
	}
	return b, nil
}

// ParseExtendedHandshake decodes the payload of extended message 0. Values out of range
// (an extension id over 255, a port over 65535, a negative reqq, a metadata_size over
// MaxMetadataSize) are an error wrapping ErrBadExtended; unknown keys are ignored. A
// session may treat the error as "no extensions" rather than drop the peer.
func ParseExtendedHandshake(payload []byte) (*ExtendedHandshake, error) {
	var h ExtendedHandshake
	d := bencode.NewDecoder(bytes.NewReader(payload))
	d.MaxStrLen = int64(len(payload))
	if err := d.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: handshake: %v", ErrBadExtended, err)
	}
	for name, id := range h.M {
		if id < 0 || id > 255 {
			return nil, fmt.Errorf("%w: handshake: extension %q has id %d", ErrBadExtended, name, id)
		}
	}
	switch {
	case h.P < 0 || h.P > 65535:
		return nil, fmt.Errorf("%w: handshake: port %d", ErrBadExtended, h.P)
	case h.Reqq < 0:
		return nil, fmt.Errorf("%w: handshake: reqq %d", ErrBadExtended, h.Reqq)
	case h.MetadataSize < 0 || h.MetadataSize > MaxMetadataSize:
		return nil, fmt.Errorf("%w: handshake: metadata_size %d", ErrBadExtended, h.MetadataSize)
	case len(h.YourIP) != 0 && len(h.YourIP) != 4 && len(h.YourIP) != 16:
		h.YourIP = nil // informational only: a malformed one is dropped, not fatal
	}
	return &h, nil
}

// MetadataType is a BEP 9 ut_metadata msg_type.
type MetadataType int

// BEP 9 message types.
const (
	MetadataRequest MetadataType = 0
	MetadataData    MetadataType = 1
	MetadataReject  MetadataType = 2
)

// MetadataPieceLen is the size of every metadata piece but the last (BEP 9).
const MetadataPieceLen = 16 << 10

// MetadataMessage is a BEP 9 ut_metadata message.
type MetadataMessage struct {
	Type  MetadataType
	Piece int
	// TotalSize is the metadata's size (data messages only).
	TotalSize int
	// Data is the metadata piece (data messages only); after ParseMetadata it aliases the
	// payload.
	Data []byte
}

type metadataDict struct {
	MsgType   int `bencode:"msg_type"`
	Piece     int `bencode:"piece"`
	TotalSize int `bencode:"total_size,omitempty"`
}

// AppendMetadata appends m as the payload of a ut_metadata extended message (the
// bencoded dictionary, then the piece for a data message).
func AppendMetadata(b []byte, m *MetadataMessage) []byte {
	d := metadataDict{MsgType: int(m.Type), Piece: m.Piece}
	if m.Type == MetadataData {
		d.TotalSize = m.TotalSize
	}
	enc, err := bencode.Marshal(&d)
	if err != nil {
		panic(err) // three integers always encode
	}
	b = append(b, enc...)
	if m.Type == MetadataData {
		b = append(b, m.Data...)
	}
	return b
}

// ParseMetadata decodes a ut_metadata payload. Errors wrap ErrBadExtended: an unknown
// msg_type, a negative piece, a data message with a total_size out of (0, MaxMetadataSize]
// or a piece longer than MetadataPieceLen, trailing bytes after a request or reject.
func ParseMetadata(payload []byte) (*MetadataMessage, error) {
	var d metadataDict
	br := bytes.NewReader(payload)
	dec := bencode.NewDecoder(br)
	dec.MaxStrLen = int64(len(payload))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: ut_metadata: %v", ErrBadExtended, err)
	}
	rest := payload[len(payload)-br.Len():]
	m := &MetadataMessage{Type: MetadataType(d.MsgType), Piece: d.Piece}
	if d.Piece < 0 || d.Piece > MaxMetadataSize/MetadataPieceLen {
		return nil, fmt.Errorf("%w: ut_metadata: piece %d", ErrBadExtended, d.Piece)
	}
	switch m.Type {
	case MetadataRequest, MetadataReject:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: ut_metadata: %d bytes after a msg_type %d", ErrBadExtended, len(rest), d.MsgType)
		}
	case MetadataData:
		if d.TotalSize <= 0 || d.TotalSize > MaxMetadataSize {
			return nil, fmt.Errorf("%w: ut_metadata: total_size %d", ErrBadExtended, d.TotalSize)
		}
		if len(rest) > MetadataPieceLen {
			return nil, fmt.Errorf("%w: ut_metadata: piece of %d bytes", ErrBadExtended, len(rest))
		}
		m.TotalSize, m.Data = d.TotalSize, rest
	default:
		return nil, fmt.Errorf("%w: ut_metadata: msg_type %d", ErrBadExtended, d.MsgType)
	}
	return m, nil
}
