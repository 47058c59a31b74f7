package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// AppendMessage appends m, encoded, to b. Only the fields of m.ID are read; a Piece
// appends m.Block, a BitfieldMsg m.Bitfield, an Extended m.ExtendedID and m.Payload.
// An ID outside the table above panics: it is a programming error.
func AppendMessage(b []byte, m *Message) []byte {
	switch m.ID {
	case KeepAlive:
		return binary.BigEndian.AppendUint32(b, 0)
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return appendNoPayload(b, m.ID)
	case Have, Suggest, AllowedFast:
		return appendIndex(b, m.ID, m.Index)
	case Request, Cancel, Reject:
		return appendTriple(b, m.ID, m.Index, m.Begin, m.Length)
	case Piece:
		b = appendPieceHeader(b, m.Index, m.Begin, len(m.Block))
		return append(b, m.Block...)
	case BitfieldMsg:
		b = appendHeader(b, BitfieldMsg, len(m.Bitfield))
		return append(b, m.Bitfield...)
	case Port:
		b = appendHeader(b, Port, 2)
		return binary.BigEndian.AppendUint16(b, m.Port)
	case Extended:
		b = appendHeader(b, Extended, 1+len(m.Payload))
		b = append(b, m.ExtendedID)
		return append(b, m.Payload...)
	}
	panic(fmt.Sprintf("wire: AppendMessage of %v", m.ID))
}

// appendHeader appends the length prefix and id of a message with n payload bytes.
func appendHeader(b []byte, id ID, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+n))
	return append(b, byte(id))
}

func appendNoPayload(b []byte, id ID) []byte {
	return append(b, 0, 0, 0, 1, byte(id))
}

func appendIndex(b []byte, id ID, index uint32) []byte {
	b = append(b, 0, 0, 0, 5, byte(id))
	return binary.BigEndian.AppendUint32(b, index)
}

func appendTriple(b []byte, id ID, index, begin, length uint32) []byte {
	b = append(b, 0, 0, 0, 13, byte(id))
	b = binary.BigEndian.AppendUint32(b, index)
	b = binary.BigEndian.AppendUint32(b, begin)
	return binary.BigEndian.AppendUint32(b, length)
}

func appendPieceHeader(b []byte, index, begin uint32, n int) []byte {
	b = appendHeader(b, Piece, 8+n)
	b = binary.BigEndian.AppendUint32(b, index)
	return binary.BigEndian.AppendUint32(b, begin)
}

// Writer batches messages: each method appends one message to a buffer, and Flush writes the
// buffer with one Write call (one syscall, one TLS-free encrypted chunk). A Writer is not
// safe for concurrent use; the buffer grows to the largest batch and is then reused, so a
// steady stream of messages allocates nothing.
type Writer struct {
	w   io.Writer
	buf []byte
	err error // sticky: the first write error
}

// NewWriter returns a Writer that flushes to w (a Conn's Writer, or any stream).
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 4<<10)}
}

// Buffered is the number of bytes waiting for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes every buffered message in one Write. On error the buffer is dropped and
// the error is sticky: every later Flush returns it without writing, because the stream
// is broken (a partial write cannot be resumed under RC4, whose writer must never be
// called again after a failure) and the connection must be closed.
func (w *Writer) Flush() error {
	if w.err != nil {
		w.buf = w.buf[:0]
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("wire: write: %w", err)
		return w.err
	}
	return nil
}

// Message appends m (see AppendMessage).
func (w *Writer) Message(m *Message) { w.buf = AppendMessage(w.buf, m) }

// KeepAlive appends a keep-alive (a zero length prefix).
func (w *Writer) KeepAlive() { w.buf = binary.BigEndian.AppendUint32(w.buf, 0) }

// Choke appends CHOKE.
func (w *Writer) Choke() { w.buf = appendNoPayload(w.buf, Choke) }

// Unchoke appends UNCHOKE.
func (w *Writer) Unchoke() { w.buf = appendNoPayload(w.buf, Unchoke) }

// Interested appends INTERESTED.
func (w *Writer) Interested() { w.buf = appendNoPayload(w.buf, Interested) }

// NotInterested appends NOT INTERESTED.
func (w *Writer) NotInterested() { w.buf = appendNoPayload(w.buf, NotInterested) }

// HaveAll appends HAVE ALL (BEP 6; only to a peer that set the Fast bit).
func (w *Writer) HaveAll() { w.buf = appendNoPayload(w.buf, HaveAll) }

// HaveNone appends HAVE NONE (BEP 6; only to a peer that set the Fast bit).
func (w *Writer) HaveNone() { w.buf = appendNoPayload(w.buf, HaveNone) }

// Have appends HAVE for piece index.
func (w *Writer) Have(index uint32) { w.buf = appendIndex(w.buf, Have, index) }

// Suggest appends SUGGEST PIECE (BEP 6).
func (w *Writer) Suggest(index uint32) { w.buf = appendIndex(w.buf, Suggest, index) }

// AllowedFast appends ALLOWED FAST (BEP 6).
func (w *Writer) AllowedFast(index uint32) { w.buf = appendIndex(w.buf, AllowedFast, index) }

// Request appends REQUEST for length bytes at begin in piece index.
func (w *Writer) Request(index, begin, length uint32) {
	w.buf = appendTriple(w.buf, Request, index, begin, length)
}

// Cancel appends CANCEL of an earlier REQUEST.
func (w *Writer) Cancel(index, begin, length uint32) {
	w.buf = appendTriple(w.buf, Cancel, index, begin, length)
}

// Reject appends REJECT REQUEST (BEP 6) of a REQUEST we will not serve.
func (w *Writer) Reject(index, begin, length uint32) {
	w.buf = appendTriple(w.buf, Reject, index, begin, length)
}

// Bitfield appends BITFIELD with the raw payload b (see Bitfield.Bytes).
func (w *Writer) Bitfield(b []byte) {
	w.buf = appendHeader(w.buf, BitfieldMsg, len(b))
	w.buf = append(w.buf, b...)
}

// Port appends PORT (BEP 5): the peer's DHT node listens on port.
func (w *Writer) Port(port uint16) {
	w.buf = appendHeader(w.buf, Port, 2)
	w.buf = binary.BigEndian.AppendUint16(w.buf, port)
}

// Piece appends PIECE carrying block (copied into the buffer).
func (w *Writer) Piece(index, begin uint32, block []byte) {
	w.buf = appendPieceHeader(w.buf, index, begin, len(block))
	w.buf = append(w.buf, block...)
}

// PieceBuffer appends the header of a PIECE of n bytes and returns the n bytes of the
// buffer the block goes in, for the caller to fill in place (storage reads straight into
// it: no copy). The slice is valid until the next call on w.
func (w *Writer) PieceBuffer(index, begin uint32, n int) []byte {
	w.buf = appendPieceHeader(w.buf, index, begin, n)
	l := len(w.buf)
	w.buf = grow(w.buf, n)
	return w.buf[l : l+n]
}

// Extended appends an extended message (BEP 10): id is the receiver's number for the
// extension (0 for the extended handshake), payload its body.
func (w *Writer) Extended(id byte, payload []byte) {
	w.buf = appendHeader(w.buf, Extended, 1+len(payload))
	w.buf = append(w.buf, id)
	w.buf = append(w.buf, payload...)
}

// grow extends b by n bytes (contents unspecified), reallocating at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
