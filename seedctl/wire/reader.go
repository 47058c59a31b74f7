package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits are what a Reader accepts from one peer. The zero value accepts a peer that
// negotiated neither Fast nor the extension protocol, for a torrent of unknown size, with
// the default message and block limits.
type Limits struct {
	// MaxMessage bounds every message's length prefix; 0 or more than DefaultMaxMessage
	// means DefaultMaxMessage (1 MiB).
	MaxMessage int
	// MaxBlock bounds a PIECE's block: 0 means BlockSize (16 KiB), values over MaxRequest
	// (128 KiB) mean MaxRequest. Set it to the largest block we request.
	MaxBlock int
	// NumPieces is the torrent's piece count, or 0 while it is unknown (a magnet link before
	// the metadata): then BITFIELDs are not checked and piece indexes not bounded, and the
	// caller checks them once it knows (CheckBitfield).
	NumPieces int
	// ValidRequest, when set, is asked about every REQUEST: false ends the connection with
	// ErrRequestOutside. It should refuse a block that runs past its piece or the torrent.
	ValidRequest func(index, begin, length uint32) bool
	// Fast and Extended say whether both sides set the reserved bit (Handshake.Reserved and
	// ours): messages of an extension not negotiated end the connection (BEP 6).
	Fast, Extended bool
}

func (l *Limits) normalize() {
	if l.MaxMessage <= 0 || l.MaxMessage > DefaultMaxMessage {
		l.MaxMessage = DefaultMaxMessage
	}
	if l.MaxBlock <= 0 {
		l.MaxBlock = BlockSize
	}
	if l.MaxBlock > MaxRequest {
		l.MaxBlock = MaxRequest
	}
}

// Reader decodes messages. It is not safe for concurrent use: one goroutine reads a
// connection.
type Reader struct {
	r   *bufio.Reader
	lim Limits

	// BlockBuffer, when set, chooses where a PIECE's block of n bytes is read: return a
	// slice of at least n bytes (typically the spot in the piece being assembled, so the
	// block is never copied), or nil for the Reader's own buffer (an unrequested block).
	// n is at most Limits.MaxBlock.
	BlockBuffer func(index, begin uint32, n int) []byte

	buf     []byte // BITFIELD and extended payloads
	block   []byte // PIECE blocks when BlockBuffer gives none
	unknown uint64
}

// minBuffered is the smallest bufio buffer the Reader works on: the longest fixed-length
// message (REQUEST, 17 bytes) must fit a Peek.
const minBuffered = 64

// NewReader returns a Reader of r (a Conn's Reader) with limits l.
func NewReader(r *bufio.Reader, l Limits) *Reader {
	if r.Size() < minBuffered {
		r = bufio.NewReaderSize(r, 4<<10)
	}
	l.normalize()
	return &Reader{r: r, lim: l}
}

// SetLimits replaces the limits: once the metadata is known (NumPieces), or after the
// extension handshake.
func (r *Reader) SetLimits(l Limits) {
	l.normalize()
	r.lim = l
}

// Limits returns the limits in force, defaults filled in.
func (r *Reader) Limits() Limits { return r.lim }

// Unknown is the number of messages with an unknown id Read has returned.
func (r *Reader) Unknown() uint64 { return r.unknown }

// fixedLen is the length prefix of each fixed-length message, 0 for the variable ones.
var fixedLen = [...]uint32{
	Choke: 1, Unchoke: 1, Interested: 1, NotInterested: 1, Have: 5, Request: 13, Cancel: 13,
	Port: 3, Suggest: 5, HaveAll: 1, HaveNone: 1, Reject: 13, AllowedFast: 5,
}

// Read decodes the next message into m. A keep-alive is returned as ID KeepAlive. A
// message with an id this package does not know (BEP 52's hash messages, a future
// extension) has its payload skipped and is returned with just its ID (ID.Known reports
// false) and counted (Unknown): ignore it. io.EOF means the peer closed between messages,
// io.ErrUnexpectedEOF inside one. Any other error wraps one of the Err values of this
// package or the connection's error, and the connection must be closed.
func (r *Reader) Read(m *Message) error {
	h, err := r.peek(4)
	if err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(h)
	if n == 0 {
		r.r.Discard(4)
		m.ID = KeepAlive
		return nil
	}
	if n > uint32(r.lim.MaxMessage) {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrMessageTooLong, n, r.lim.MaxMessage)
	}
	h, err = r.peek(5)
	if err != nil {
		return eofInside(err)
	}
	id := ID(h[4])
	if int(id) < len(fixedLen) && fixedLen[id] != 0 {
		return r.readFixed(m, id, n)
	}
	switch id {
	case Piece:
		return r.readPiece(m, n)
	case BitfieldMsg:
		return r.readBitfield(m, n)
	case Extended:
		return r.readExtended(m, n)
	}
	if _, err := r.r.Discard(4 + int(n)); err != nil {
		return eofInside(err)
	}
	r.unknown++
	m.ID = id
	return nil
}

// peek returns the next n bytes without consuming them; io.EOF only when nothing at all
// is left.
func (r *Reader) peek(n int) ([]byte, error) {
	b, err := r.r.Peek(n)
	if err != nil {
		if len(b) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

func eofInside(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *Reader) readFixed(m *Message, id ID, n uint32) error {
	if n != fixedLen[id] {
		return fmt.Errorf("%w: %v of %d bytes", ErrBadLength, id, n)
	}
	if (id >= Suggest && id <= AllowedFast) && !r.lim.Fast {
		return fmt.Errorf("%w: %v without the Fast extension", ErrNotNegotiated, id)
	}
	b, err := r.peek(4 + int(n))
	if err != nil {
		return eofInside(err)
	}
	p := b[5:]
	switch id {
	case Have, Suggest, AllowedFast:
		m.Index = binary.BigEndian.Uint32(p)
		if err := r.checkIndex(id, m.Index); err != nil {
			return err
		}
	case Request, Cancel, Reject:
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Length = binary.BigEndian.Uint32(p[8:])
		if m.Length > MaxRequest {
			return fmt.Errorf("%w: %v of %d bytes (limit %d)", ErrRequestTooLong, id, m.Length, MaxRequest)
		}
		if id == Request {
			if err := r.checkIndex(id, m.Index); err != nil {
				return err
			}
			if m.Length == 0 || r.lim.ValidRequest != nil && !r.lim.ValidRequest(m.Index, m.Begin, m.Length) {
				return fmt.Errorf("%w: piece %d begin %d length %d", ErrRequestOutside, m.Index, m.Begin, m.Length)
			}
		}
	case Port:
		m.Port = binary.BigEndian.Uint16(p)
	}
	r.r.Discard(4 + int(n))
	m.ID = id
	return nil
}

func (r *Reader) checkIndex(id ID, index uint32) error {
	if r.lim.NumPieces > 0 && index >= uint32(r.lim.NumPieces) {
		return fmt.Errorf("%w: %v of piece %d, torrent has %d", ErrIndexOutside, id, index, r.lim.NumPieces)
	}
	return nil
}

func (r *Reader) readPiece(m *Message, n uint32) error {
	if n < 9 {
		return fmt.Errorf("%w: piece of %d bytes", ErrBadLength, n)
	}
	size := int(n - 9)
	if size > r.lim.MaxBlock {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrPieceTooLong, size, r.lim.MaxBlock)
	}
	b, err := r.peek(pieceHeader)
	if err != nil {
		return eofInside(err)
	}
	index := binary.BigEndian.Uint32(b[5:])
	begin := binary.BigEndian.Uint32(b[9:])
	if err := r.checkIndex(Piece, index); err != nil {
		return err
	}
	r.r.Discard(pieceHeader)
	var dst []byte
	if r.BlockBuffer != nil {
		dst = r.BlockBuffer(index, begin, size)
	}
	if len(dst) < size {
		if len(r.block) < r.lim.MaxBlock {
			r.block = make([]byte, r.lim.MaxBlock)
		}
		dst = r.block
	}
	dst = dst[:size]
	if _, err := io.ReadFull(r.r, dst); err != nil {
		return eofInside(err)
	}
	m.ID, m.Index, m.Begin, m.Block = Piece, index, begin, dst
	return nil
}

// payloadChunk is how far the payload buffer grows ahead of the bytes that arrived: a
// peer that announces a 1 MiB message and sends nothing more costs 64 KiB, not 1 MiB.
const payloadChunk = 64 << 10

// payload reads the n-1 bytes after the id into the Reader's buffer.
func (r *Reader) payload(n uint32) ([]byte, error) {
	r.r.Discard(5)
	size := int(n - 1)
	b := r.buf[:0]
	for len(b) < size {
		step := min(size-len(b), payloadChunk)
		if cap(b)-len(b) < step {
			nb := make([]byte, len(b), min(size, max(2*cap(b), len(b)+step)))
			copy(nb, b)
			b = nb
		}
		if _, err := io.ReadFull(r.r, b[len(b):len(b)+step]); err != nil {
			return nil, eofInside(err)
		}
		b = b[:len(b)+step]
	}
	r.buf = b[:0]
	return b, nil
}

func (r *Reader) readBitfield(m *Message, n uint32) error {
	if np := r.lim.NumPieces; np > 0 && int(n-1) != BitfieldLen(np) {
		return fmt.Errorf("%w: %d bytes for %d pieces, want %d", ErrBadBitfield, n-1, np, BitfieldLen(np))
	}
	b, err := r.payload(n)
	if err != nil {
		return err
	}
	if np := r.lim.NumPieces; np > 0 {
		if err := CheckBitfield(b, np); err != nil {
			return err
		}
	}
	m.ID, m.Bitfield = BitfieldMsg, b
	return nil
}

func (r *Reader) readExtended(m *Message, n uint32) error {
	if !r.lim.Extended {
		return fmt.Errorf("%w: extended message without the extension protocol", ErrNotNegotiated)
	}
	if n < 2 {
		return fmt.Errorf("%w: extended message of %d bytes", ErrBadLength, n)
	}
	b, err := r.payload(n)
	if err != nil {
		return err
	}
	m.ID, m.ExtendedID, m.Payload = Extended, b[0], b[1:]
	return nil
}
