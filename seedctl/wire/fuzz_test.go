package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the Reader under two sets of limits: it must never
// panic, never return a block or payload over its limit, and every message it returns must
// encode back to bytes that decode to the same message. The seed corpus is in
// testdata/fuzz/FuzzDecode (one file per message kind, hostile ones included).
func FuzzDecode(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{ID: Request, Index: 1, Begin: 2, Length: 3}))
	f.Add(AppendMessage(nil, &Message{ID: Piece, Index: 1, Begin: 2, Block: []byte("block")}))
	f.Add(AppendMessage(nil, &Message{ID: BitfieldMsg, Bitfield: []byte{0xff, 0xf0}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []Limits{
			{NumPieces: 12, Fast: true, Extended: true, MaxMessage: 1 << 16,
				ValidRequest: func(index, begin, length uint32) bool { return begin < 1<<20 }},
			{}, // unknown torrent, no extensions
		} {
			r := NewReader(bufio.NewReaderSize(bytes.NewReader(data), 64), l)
			var m Message
			for range 100 {
				err := r.Read(&m)
				if err != nil {
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isWireError(err) {
						break
					}
					t.Fatalf("unexpected error kind: %v", err)
				}
				lim := r.Limits()
				if len(m.Block) > lim.MaxBlock || len(m.Payload) > lim.MaxMessage || len(m.Bitfield) > lim.MaxMessage {
					t.Fatalf("%v over its limit", m.ID)
				}
				if !m.ID.Known() {
					continue // skipped payload: nothing to re-encode
				}
				enc := AppendMessage(nil, &m)
				var again Message
				if err := NewReader(bufio.NewReader(bytes.NewReader(enc)), lim).Read(&again); err != nil {
					t.Fatalf("re-decoding %v: %v", m.ID, err)
				}
				if !equalMessage(&m, &again) {
					t.Fatalf("re-decoded %+v, want %+v", again, m)
				}
				if m.ID == Extended && m.ExtendedID == 0 {
					ParseExtendedHandshake(m.Payload) // must not panic
				} else if m.ID == Extended {
					ParseMetadata(m.Payload)
				}
			}
		}
	})
}

func isWireError(err error) bool {
	for _, e := range []error{ErrMessageTooLong, ErrPieceTooLong, ErrRequestTooLong, ErrRequestOutside,
		ErrBadBitfield, ErrIndexOutside, ErrBadLength, ErrNotNegotiated} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzExtended feeds arbitrary payloads to the BEP 10 and BEP 9 parsers: no panic, only
// ErrBadExtended, and what parses re-encodes to something that parses the same.
func FuzzExtended(f *testing.F) {
	f.Add([]byte("d1:md11:ut_metadatai2ee1:pi6881e4:reqqi500e1:v5:aria2e"))
	f.Add([]byte("d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"))
	f.Add([]byte("d8:msg_typei0e5:piecei7ee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ParseExtendedHandshake(data); err != nil {
			if !errors.Is(err, ErrBadExtended) {
				t.Fatalf("handshake: %v", err)
			}
		} else {
			enc, err := h.Encode()
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", h, err)
			}
			if _, err := ParseExtendedHandshake(enc); err != nil {
				t.Fatalf("re-parsing %q: %v", enc, err)
			}
		}
		if m, err := ParseMetadata(data); err != nil {
			if !errors.Is(err, ErrBadExtended) {
				t.Fatalf("metadata: %v", err)
			}
		} else {
			m2, err := ParseMetadata(AppendMetadata(nil, m))
			if err != nil || m2.Type != m.Type || m2.Piece != m.Piece || m2.TotalSize != m.TotalSize || !bytes.Equal(m2.Data, m.Data) {
				t.Fatalf("re-parsed %+v (%v), want %+v", m2, err, m)
			}
		}
	})
}
