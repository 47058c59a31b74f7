package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func newTestReader(b []byte, l Limits) *Reader {
	return NewReader(bufio.NewReader(bytes.NewReader(b)), l)
}

var allLimits = Limits{NumPieces: 20, Fast: true, Extended: true}

func TestRoundTrip(t *testing.T) {
	block := bytes.Repeat([]byte{0xab}, BlockSize)
	tests := []struct {
		name string
		m    Message
		want []byte // encoding, when worth spelling out
	}{
		{"keep-alive", Message{ID: KeepAlive}, []byte{0, 0, 0, 0}},
		{"choke", Message{ID: Choke}, []byte{0, 0, 0, 1, 0}},
		{"unchoke", Message{ID: Unchoke}, []byte{0, 0, 0, 1, 1}},
		{"interested", Message{ID: Interested}, []byte{0, 0, 0, 1, 2}},
		{"not interested", Message{ID: NotInterested}, []byte{0, 0, 0, 1, 3}},
		{"have", Message{ID: Have, Index: 19}, []byte{0, 0, 0, 5, 4, 0, 0, 0, 19}},
		{"bitfield", Message{ID: BitfieldMsg, Bitfield: []byte{0xff, 0x00, 0xf0}}, []byte{0, 0, 0, 4, 5, 0xff, 0, 0xf0}},
		{"request", Message{ID: Request, Index: 1, Begin: 16384, Length: 16384},
			[]byte{0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0}},
		{"piece", Message{ID: Piece, Index: 3, Begin: 32768, Block: block}, nil},
		{"piece empty", Message{ID: Piece, Index: 3, Begin: 0, Block: []byte{}}, []byte{0, 0, 0, 9, 7, 0, 0, 0, 3, 0, 0, 0, 0}},
		{"cancel", Message{ID: Cancel, Index: 2, Begin: 0, Length: 1}, nil},
		{"port", Message{ID: Port, Port: 6881}, []byte{0, 0, 0, 3, 9, 0x1a, 0xe1}},
		{"suggest", Message{ID: Suggest, Index: 7}, []byte{0, 0, 0, 5, 13, 0, 0, 0, 7}},
		{"have all", Message{ID: HaveAll}, []byte{0, 0, 0, 1, 14}},
		{"have none", Message{ID: HaveNone}, []byte{0, 0, 0, 1, 15}},
		{"reject", Message{ID: Reject, Index: 5, Begin: 16384, Length: 16384}, nil},
		{"allowed fast", Message{ID: AllowedFast, Index: 0}, []byte{0, 0, 0, 5, 17, 0, 0, 0, 0}},
		{"extended handshake", Message{ID: Extended, ExtendedID: 0, Payload: []byte("d1:md11:ut_metadatai1eee")}, nil},
		{"extended other", Message{ID: Extended, ExtendedID: 3, Payload: []byte{}}, []byte{0, 0, 0, 2, 20, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendMessage(nil, &tc.m)
			if tc.want != nil && !bytes.Equal(enc, tc.want) {
				t.Fatalf("encoded % x, want % x", enc, tc.want)
			}
			if got := binary.BigEndian.Uint32(enc); int(got) != len(enc)-4 {
				t.Fatalf("length prefix %d for %d bytes", got, len(enc)-4)
			}
			// The same bytes through the Writer's own method.
			var buf bytes.Buffer
			w := NewWriter(&buf)
			writeWithMethod(w, &tc.m)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), enc) {
				t.Fatalf("Writer method wrote % x, AppendMessage % x", buf.Bytes(), enc)
			}
			l := allLimits
			l.NumPieces = 0 // the 3-byte bitfield is for 17..24 pieces; checked elsewhere
			r := newTestReader(enc, l)
			var got Message
			if err := r.Read(&got); err != nil {
				t.Fatal(err)
			}
			if !equalMessage(&got, &tc.m) {
				t.Fatalf("decoded %+v, want %+v", got, tc.m)
			}
			if err := r.Read(&got); err != io.EOF {
				t.Fatalf("after the message: %v, want io.EOF", err)
			}
		})
	}
}

// writeWithMethod encodes m with the Writer method named after its ID.
func writeWithMethod(w *Writer, m *Message) {
	switch m.ID {
	case KeepAlive:
		w.KeepAlive()
	case Choke:
		w.Choke()
	case Unchoke:
		w.Unchoke()
	case Interested:
		w.Interested()
	case NotInterested:
		w.NotInterested()
	case Have:
		w.Have(m.Index)
	case BitfieldMsg:
		w.Bitfield(m.Bitfield)
	case Request:
		w.Request(m.Index, m.Begin, m.Length)
	case Piece:
		copy(w.PieceBuffer(m.Index, m.Begin, len(m.Block)), m.Block)
	case Cancel:
		w.Cancel(m.Index, m.Begin, m.Length)
	case Port:
		w.Port(m.Port)
	case Suggest:
		w.Suggest(m.Index)
	case HaveAll:
		w.HaveAll()
	case HaveNone:
		w.HaveNone()
	case Reject:
		w.Reject(m.Index, m.Begin, m.Length)
	case AllowedFast:
		w.AllowedFast(m.Index)
	case Extended:
		w.Extended(m.ExtendedID, m.Payload)
	default:
		panic(m.ID)
	}
}

// equalMessage compares the fields m's ID uses.
func equalMessage(a, b *Message) bool {
	if a.ID != b.ID {
		return false
	}
	switch a.ID {
	case Have, Suggest, AllowedFast:
		return a.Index == b.Index
	case Request, Cancel, Reject:
		return a.Index == b.Index && a.Begin == b.Begin && a.Length == b.Length
	case Piece:
		return a.Index == b.Index && a.Begin == b.Begin && bytes.Equal(a.Block, b.Block)
	case BitfieldMsg:
		return bytes.Equal(a.Bitfield, b.Bitfield)
	case Port:
		return a.Port == b.Port
	case Extended:
		return a.ExtendedID == b.ExtendedID && bytes.Equal(a.Payload, b.Payload)
	}
	return true
}

func TestWriterBatches(t *testing.T) {
	var cw countingWriter
	w := NewWriter(&cw)
	w.Unchoke()
	w.Have(1)
	w.Piece(0, 0, make([]byte, BlockSize))
	w.Piece(0, BlockSize, make([]byte, BlockSize))
	if w.Buffered() != 5+9+2*(13+BlockSize) {
		t.Fatalf("buffered %d", w.Buffered())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // nothing buffered: no write
		t.Fatal(err)
	}
	if cw.writes != 1 || w.Buffered() != 0 {
		t.Fatalf("%d writes, %d left buffered; want 1 write", cw.writes, w.Buffered())
	}
}

type countingWriter struct {
	writes int
	n      int
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.writes++
	c.n += len(b)
	return len(b), nil
}

func TestWriterFlushError(t *testing.T) {
	w := NewWriter(failWriter{new(int)})
	w.Choke()
	err := w.Flush()
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Flush: %v", err)
	}
	if w.Buffered() != 0 {
		t.Fatal("buffer kept after a failed flush")
	}
	w.Have(1)
	if err2 := w.Flush(); err2 != err {
		t.Fatalf("second Flush: %v, want the first error again", err2)
	}
}

// failWriter fails its first write and panics on any later one, as mse's RC4 writer does.
type failWriter struct{ calls *int }

func (f failWriter) Write([]byte) (int, error) {
	if *f.calls++; *f.calls > 1 {
		panic("write after a failed write")
	}
	return 0, io.ErrClosedPipe
}

func TestReadSequenceAndBlockBuffer(t *testing.T) {
	var b []byte
	b = AppendMessage(b, &Message{ID: HaveAll})
	b = AppendMessage(b, &Message{ID: Piece, Index: 2, Begin: 100, Block: []byte("hello")})
	b = AppendMessage(b, &Message{ID: Piece, Index: 9, Begin: 0, Block: []byte("unrequested")})
	b = append(b, 0, 0, 0, 3, 21, 1, 2) // BEP 52 hash request: unknown here, skipped
	b = append(b, 0, 0, 0, 1, 99)       // unknown id, no payload
	b = AppendMessage(b, &Message{ID: KeepAlive})
	b = AppendMessage(b, &Message{ID: Have, Index: 4})

	r := newTestReader(b, allLimits)
	dst := make([]byte, 64)
	r.BlockBuffer = func(index, begin uint32, n int) []byte {
		if index == 2 {
			return dst[begin-100:]
		}
		return nil
	}
	var m Message
	want := []ID{HaveAll, Piece, Piece, 21, 99, KeepAlive, Have}
	for i, id := range want {
		if err := r.Read(&m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.ID != id {
			t.Fatalf("message %d: %v, want %v", i, m.ID, id)
		}
		if i == 1 && (string(dst[:5]) != "hello" || &m.Block[0] != &dst[0]) {
			t.Fatalf("block not read into the caller's buffer: %q", dst[:5])
		}
		if i == 2 && string(m.Block) != "unrequested" {
			t.Fatalf("unrequested block %q", m.Block)
		}
	}
	if r.Unknown() != 2 {
		t.Fatalf("Unknown() = %d, want 2", r.Unknown())
	}
	if err := r.Read(&m); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
}

func header(n uint32, id byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, n), id)
}

func TestReadHostile(t *testing.T) {
	valid := func(index, begin, length uint32) bool {
		return index < 20 && uint64(begin)+uint64(length) <= 32<<10
	}
	lim := allLimits
	lim.ValidRequest = valid
	tests := []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"message over 1 MiB", header(1<<20+1, 20), lim, ErrMessageTooLong},
		{"length 4 GiB", []byte{0xff, 0xff, 0xff, 0xff, 7}, lim, ErrMessageTooLong},
		{"message over a lower limit", header(1001, 5), Limits{MaxMessage: 1000}, ErrMessageTooLong},
		{"piece over 16 KiB", header(9+BlockSize+1, 7), lim, ErrPieceTooLong},
		{"piece over MaxBlock 128 KiB", header(9+MaxRequest+1, 7), Limits{MaxBlock: 1 << 20}, ErrPieceTooLong},
		{"piece too short", header(8, 7), lim, ErrBadLength},
		{"piece outside", append(header(9+1, 7), 0, 0, 0, 20, 0, 0, 0, 0, 1), lim, ErrIndexOutside},
		{"request over 128 KiB", appendTriple(nil, Request, 0, 0, MaxRequest+1), lim, ErrRequestTooLong},
		{"cancel over 128 KiB", appendTriple(nil, Cancel, 0, 0, 1<<31), lim, ErrRequestTooLong},
		{"reject over 128 KiB", appendTriple(nil, Reject, 0, 0, MaxRequest+1), lim, ErrRequestTooLong},
		{"request past the piece", appendTriple(nil, Request, 0, 16384, 16385), lim, ErrRequestOutside},
		{"request of a missing piece", appendTriple(nil, Request, 20, 0, 16384), lim, ErrIndexOutside},
		{"request of 0 bytes", appendTriple(nil, Request, 0, 0, 0), lim, ErrRequestOutside},
		{"request 12 bytes", append(header(12, 6), make([]byte, 11)...), lim, ErrBadLength},
		{"have 3 bytes", append(header(4, 4), 0, 0, 1), lim, ErrBadLength},
		{"choke with payload", append(header(2, 0), 0), lim, ErrBadLength},
		{"have outside", appendIndex(nil, Have, 20), lim, ErrIndexOutside},
		{"suggest outside", appendIndex(nil, Suggest, 1<<31), lim, ErrIndexOutside},
		{"allowed fast outside", appendIndex(nil, AllowedFast, 20), lim, ErrIndexOutside},
		{"bitfield short", append(header(3, 5), 0xff, 0xff), lim, ErrBadBitfield},
		{"bitfield long", append(header(5, 5), 0xff, 0xff, 0xf0, 0), lim, ErrBadBitfield},
		{"bitfield spare bit", append(header(4, 5), 0xff, 0xff, 0xf8), lim, ErrBadBitfield},
		{"have all without Fast", appendNoPayload(nil, HaveAll), Limits{Extended: true}, ErrNotNegotiated},
		{"reject without Fast", appendTriple(nil, Reject, 0, 0, 1), Limits{}, ErrNotNegotiated},
		{"extended without BEP 10", append(header(2, 20), 0), Limits{Fast: true}, ErrNotNegotiated},
		{"extended without ext id", header(1, 20), lim, ErrBadLength},
		{"truncated header", []byte{0, 0}, lim, io.ErrUnexpectedEOF},
		{"truncated id", []byte{0, 0, 0, 5}, lim, io.ErrUnexpectedEOF},
		{"truncated have", []byte{0, 0, 0, 5, 4, 0}, lim, io.ErrUnexpectedEOF},
		{"truncated piece", append(header(9+100, 7), make([]byte, 50)...), lim, io.ErrUnexpectedEOF},
		{"truncated bitfield", append(header(4, 5), 0xff), lim, io.ErrUnexpectedEOF},
		{"truncated unknown", append(header(100, 99), 1, 2, 3), lim, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := newTestReader(tc.in, tc.lim).Read(&m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Read: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestReadErrorsDistinct: every limit is its own error, so a caller can count each.
func TestReadErrorsDistinct(t *testing.T) {
	errs := []error{ErrMessageTooLong, ErrPieceTooLong, ErrRequestTooLong, ErrRequestOutside,
		ErrBadBitfield, ErrIndexOutside, ErrBadLength, ErrNotNegotiated, ErrBadExtended,
		ErrBadProtocol, ErrUnknownInfoHash, ErrEncryptionRequired, ErrEncryptionDisabled, ErrMSE, ErrSelfConnection}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v is %v", a, b)
			}
		}
	}
}

func TestLimitsNormalize(t *testing.T) {
	r := newTestReader(nil, Limits{MaxMessage: 1 << 30, MaxBlock: 1 << 30})
	if l := r.Limits(); l.MaxMessage != DefaultMaxMessage || l.MaxBlock != MaxRequest {
		t.Fatalf("limits %+v", l)
	}
	r.SetLimits(Limits{})
	if l := r.Limits(); l.MaxMessage != DefaultMaxMessage || l.MaxBlock != BlockSize {
		t.Fatalf("limits %+v", l)
	}
}

// TestReadSmallBufio: a caller's bufio.Reader too small for a REQUEST still works.
func TestReadSmallBufio(t *testing.T) {
	in := appendTriple(nil, Request, 1, 2, 3)
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 16), Limits{})
	var m Message
	if err := r.Read(&m); err != nil || m.ID != Request || m.Length != 3 {
		t.Fatalf("%v %+v", err, m)
	}
}

func TestIDString(t *testing.T) {
	for id, want := range map[ID]string{KeepAlive: "keep-alive", Piece: "piece", AllowedFast: "allowed fast", 10: "unknown(10)", 200: "unknown(200)"} {
		if got := id.String(); got != want {
			t.Errorf("%d: %q, want %q", id, got, want)
		}
		if id.Known() != !strings.HasPrefix(want, "unknown") {
			t.Errorf("%d: Known() = %v", id, id.Known())
		}
	}
}

func TestAppendMessagePanicsOnUnknown(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "unknown(99)") {
			t.Fatalf("recover() = %v", r)
		}
	}()
	AppendMessage(nil, &Message{ID: 99})
}

// TestReadLargePayload: payloads that grow the buffer in steps arrive whole.
func TestReadLargePayload(t *testing.T) {
	payload := make([]byte, 300<<10+7)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	in := AppendMessage(nil, &Message{ID: Extended, ExtendedID: 1, Payload: payload})
	in = AppendMessage(in, &Message{ID: Extended, ExtendedID: 2, Payload: []byte("small")})
	r := newTestReader(in, Limits{Extended: true})
	var m Message
	if err := r.Read(&m); err != nil || !bytes.Equal(m.Payload, payload) {
		t.Fatalf("large payload: %v", err)
	}
	if err := r.Read(&m); err != nil || string(m.Payload) != "small" {
		t.Fatalf("then a small one: %v %q", err, m.Payload)
	}
}
