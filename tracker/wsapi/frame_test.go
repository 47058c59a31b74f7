package wsapi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frameLimit is the message size limit of the frame tests.
const frameLimit = 1000

// clientFrame is a frame as a client sends it: masked with key.
func clientFrame(b0 byte, payload []byte, key [4]byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, key[:]...)
	p := append([]byte(nil), payload...)
	mask(key, p)
	return append(out, p...)
}

var testKey = [4]byte{0x12, 0x34, 0x56, 0x78}

func fin(op byte) byte { return 0x80 | op }

// frameSeeds are client streams: valid, fragmented, hostile.
func frameSeeds() [][]byte {
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	return [][]byte{
		clientFrame(fin(opText), []byte(`{"action":"scrape"}`), testKey),
		clientFrame(fin(opBinary), []byte{0, 1, 2}, testKey),
		clientFrame(fin(opText), nil, testKey),
		clientFrame(fin(opText), bytes.Repeat([]byte("a"), 300), testKey),          // 16-bit length
		clientFrame(fin(opText), bytes.Repeat([]byte("a"), frameLimit+1), testKey), // over the limit
		clientFrame(fin(opText), bytes.Repeat([]byte("a"), 70000), testKey)[:20],   // 64-bit length, cut
		{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},                        // 64-bit length, top bit
		{0x81, 0xfe, 0xff},                                     // partial header
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},                  // unmasked
		clientFrame(0xc1, []byte("x"), testKey),                // RSV1
		clientFrame(fin(3), []byte("x"), testKey),              // bad opcode
		clientFrame(fin(opContinuation), []byte("x"), testKey), // continuation first
		cat(clientFrame(opText, []byte("he"), testKey), clientFrame(fin(opText), []byte("x"), testKey)), // data before FIN
		cat(clientFrame(opText, []byte("he"), testKey),
			clientFrame(fin(opPing), []byte("p"), testKey),
			clientFrame(opContinuation, []byte("ll"), testKey),
			clientFrame(fin(opContinuation), []byte("o"), testKey),
			clientFrame(fin(opText), []byte("next"), testKey)),
		cat(clientFrame(opText, bytes.Repeat([]byte("a"), 600), testKey), clientFrame(fin(opContinuation), bytes.Repeat([]byte("b"), 600), testKey)), // fragments over the limit
		clientFrame(opPing, nil, testKey),                                 // control without FIN
		clientFrame(fin(opPing), bytes.Repeat([]byte("p"), 126), testKey), // control too long
		cat(clientFrame(fin(opPing), []byte("hi"), testKey), clientFrame(fin(opPong), []byte("yo"), testKey)),
		clientFrame(fin(opClose), nil, testKey),
		clientFrame(fin(opClose), []byte{3}, testKey),
		clientFrame(fin(opClose), []byte{0x03, 0xe8, 'b', 'y', 'e'}, testKey),
		clientFrame(fin(opClose), []byte{0x03, 0xed}, testKey),       // 1005 may not be sent
		clientFrame(fin(opClose), []byte{0x0f, 0xa0, 0xff}, testKey), // 4000, reason not UTF-8
		cat(clientFrame(fin(opClose), []byte{0x03, 0xe9}, testKey), clientFrame(fin(opText), []byte("after"), testKey)),
		clientFrame(fin(opText), []byte{0xff, 0xfe}, testKey), // text not UTF-8: delivered, as gorilla does
		clientFrame(0xa1, []byte("x"), testKey),               // RSV2
		clientFrame(0x91, []byte("x"), testKey),               // RSV3
	}
}

// oursOnStream reads stream with the frame reader, fed in chunks of chunk bytes as reads
// would, and tells what it found: messages, control frames and how the stream ended.
func oursOnStream(stream []byte, chunk int) []string {
	var st frameState
	var got []string
	var buf, frag []byte
	for off := 0; ; {
		end := min(len(stream), off+chunk)
		buf = append(buf, stream[off:end]...)
		off = end
		used := 0
		for {
			f, n, err := st.next(buf[used:], frameLimit)
			switch {
			case errors.Is(err, errTooLarge):
				return append(got, "too large")
			case err != nil:
				return append(got, "protocol error")
			}
			if n == 0 {
				break
			}
			used += n
			switch f.op {
			case opPing:
				got = append(got, fmt.Sprintf("ping %q", f.payload))
			case opPong:
				got = append(got, fmt.Sprintf("pong %q", f.payload))
			case opClose:
				code, text, err := closePayload(f.payload)
				if err != nil {
					return append(got, "protocol error")
				}
				return append(got, fmt.Sprintf("close %d %q", code, text))
			case opText, opBinary, opContinuation:
				frag = append(frag, f.payload...)
				if f.fin {
					got = append(got, fmt.Sprintf("message %d %q", st.op, frag))
					frag = frag[:0]
				}
			}
		}
		buf = buf[:copy(buf, buf[used:])]
		if off == len(stream) {
			return append(got, "end")
		}
	}
}

// streamConn is a net.Conn reading stream, then io.EOF; writes are dropped.
type streamConn struct {
	net.Conn
	r io.Reader
}

func (c *streamConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *streamConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

type hijacker struct {
	http.ResponseWriter
	c net.Conn
}

func (h *hijacker) Header() http.Header { return http.Header{} }

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.c, bufio.NewReadWriter(bufio.NewReader(h.c), bufio.NewWriter(h.c)), nil
}

// gorillaOnStream reads stream with gorilla/websocket's reader, as the tracker did, and tells
// what it found in oursOnStream's terms.
func gorillaOnStream(t *testing.T, stream []byte) []string {
	c := &streamConn{r: bytes.NewReader(stream)}
	req, _ := http.NewRequest("GET", "http://127.0.0.1/announce", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	ws, err := (&websocket.Upgrader{}).Upgrade(&hijacker{c: c}, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ws.SetReadLimit(frameLimit)
	ws.SetPingHandler(func(s string) error { got = append(got, fmt.Sprintf("ping %q", s)); return nil })
	ws.SetPongHandler(func(s string) error { got = append(got, fmt.Sprintf("pong %q", s)); return nil })
	for {
		mt, r, err := ws.NextReader()
		var msg []byte
		if err == nil {
			msg, err = io.ReadAll(r)
		}
		var ce *websocket.CloseError
		switch {
		case err == nil:
			got = append(got, fmt.Sprintf("message %d %q", mt, msg))
			continue
		case errors.Is(err, websocket.ErrReadLimit):
			return append(got, "too large")
		case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
			return append(got, "end") // the stream ended, within a frame or not
		case errors.As(err, &ce):
			return append(got, fmt.Sprintf("close %d %q", ce.Code, ce.Text))
		case strings.HasPrefix(err.Error(), "websocket: "):
			return append(got, "protocol error")
		}
		t.Fatalf("gorilla: unexpected error %v", err)
	}
}

// checkFrames holds the frame reader to gorilla's on one stream, read whole and in pieces.
func checkFrames(t *testing.T, stream []byte) {
	want := gorillaOnStream(t, bytes.Clone(stream))
	for _, chunk := range []int{len(stream) + 1, 1, 3, 1 + len(stream)%7} {
		got := oursOnStream(bytes.Clone(stream), chunk)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stream %x in chunks of %d:\n got  %q\n want %q (gorilla)", stream, chunk, got, want)
		}
	}
}

func TestFramesMatchGorilla(t *testing.T) {
	for _, s := range frameSeeds() {
		checkFrames(t, s)
	}
}

// FuzzFrames compares the frame reader with gorilla's on any stream a client could send.
func FuzzFrames(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) { checkFrames(t, stream) })
}

// TestFrameResults pins what the reader makes of a few streams, so that the comparison
// with gorilla cannot pass by both saying nothing.
func TestFrameResults(t *testing.T) {
	seeds := frameSeeds()
	for i, want := range map[int]string{
		0:  `[message 1 "{\"action\":\"scrape\"}" end]`,
		4:  `[too large]`,
		6:  `[too large]`,
		8:  `[protocol error]`,
		13: `[ping "p" message 1 "hello" message 1 "next" end]`,
		14: `[too large]`,
		20: `[close 1000 "bye"]`,
		21: `[protocol error]`,
	} {
		if got := fmt.Sprint(oursOnStream(bytes.Clone(seeds[i]), 2)); got != want {
			t.Errorf("seed %d: %s, want %s", i, got, want)
		}
	}
}

func TestServerFrameHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		h := appendFrameHeader(nil, opText, n)
		var st frameState
		// A server frame is unmasked, which a client frame may not be: check the length
		// fields by masking the header as a client would and reading it back.
		h[1] |= 0x80
		h = append(h, 0, 0, 0, 0)
		h = append(h, make([]byte, n)...)
		f, m, err := st.next(h, 1<<20)
		if err != nil || m != len(h) || len(f.payload) != n || !f.fin || f.op != opText {
			t.Fatalf("n=%d: frame %+v, %d of %d bytes, %v", n, f.op, m, len(h), err)
		}
	}
}

// BenchmarkFrames reads a browser's announce (5 offers) in one frame: the frame reader on
// the bytes of a read against gorilla's reader on a connection.
func BenchmarkFrames(b *testing.B) {
	stream := clientFrame(fin(opText), benchAnnounce(b), testKey)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stream)))
		buf := make([]byte, len(stream))
		for b.Loop() {
			copy(buf, stream)
			var st frameState
			if _, n, err := st.next(buf, 64<<10); n != len(buf) || err != nil {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("gorilla", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stream)))
		r := &repeatReader{b: stream}
		c := &streamConn{r: r}
		req, _ := http.NewRequest("GET", "http://127.0.0.1/announce", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		ws, err := (&websocket.Upgrader{ReadBufferSize: 8192}).Upgrade(&hijacker{c: c}, req, nil)
		if err != nil {
			b.Fatal(err)
		}
		ws.SetReadLimit(64 << 10)
		buf := make([]byte, 0, 8192)
		for b.Loop() {
			_, rd, err := ws.NextReader()
			if err == nil {
				buf, err = readInto(rd, buf[:0])
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// repeatReader reads b over and over.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// readInto appends what r reads to b until io.EOF, as the tracker read a message.
func readInto(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
