package wire

import (
	"bufio"
	"io"
	"net"
	"testing"
)

// loopReader yields data over and over: a connection that never runs dry.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func benchDecode(b *testing.B, m *Message, l Limits, blockBuf []byte) {
	var batch []byte
	for range 64 {
		batch = AppendMessage(batch, m)
	}
	r := NewReader(bufio.NewReaderSize(&loopReader{data: batch}, 64<<10), l)
	if blockBuf != nil {
		r.BlockBuffer = func(index, begin uint32, n int) []byte { return blockBuf }
	}
	var got Message
	b.SetBytes(int64(len(batch) / 64))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := r.Read(&got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHave(b *testing.B) {
	benchDecode(b, &Message{ID: Have, Index: 1234}, Limits{NumPieces: 4096}, nil)
}

func BenchmarkDecodeRequest(b *testing.B) {
	benchDecode(b, &Message{ID: Request, Index: 1, Begin: 16384, Length: 16384}, Limits{NumPieces: 4096,
		ValidRequest: func(index, begin, length uint32) bool { return begin+length <= 1<<20 }}, nil)
}

// BenchmarkDecodePiece reads 16 KiB blocks into the caller's buffer (the bytes/s figure is
// the decoder's ceiling, bufio copy included).
func BenchmarkDecodePiece(b *testing.B) {
	benchDecode(b, &Message{ID: Piece, Index: 7, Begin: 0, Block: make([]byte, BlockSize)}, Limits{NumPieces: 4096}, make([]byte, BlockSize))
}

func BenchmarkDecodeBitfield(b *testing.B) {
	bf := NewBitfield(4096)
	bf.SetAll()
	benchDecode(b, &Message{ID: BitfieldMsg, Bitfield: bf.Bytes()}, Limits{NumPieces: 4096}, nil)
}

// benchWriter flushes every 64 messages, as a session flushes once per batch of work.
func benchEncode(b *testing.B, write func(w *Writer)) {
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		write(w)
		if i++; i%64 == 0 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkEncodeHave(b *testing.B) {
	benchEncode(b, func(w *Writer) { w.Have(1234) })
}

func BenchmarkEncodeRequest(b *testing.B) {
	benchEncode(b, func(w *Writer) { w.Request(1, 16384, 16384) })
}

// BenchmarkEncodePieceHeader appends a PIECE header and returns the block's place in the
// buffer (storage reads into it: the block itself is not copied here, so no bytes/s).
func BenchmarkEncodePieceHeader(b *testing.B) {
	benchEncode(b, func(w *Writer) { w.PieceBuffer(7, 0, BlockSize) })
}

// BenchmarkConn moves 16 KiB PIECEs over a loopback TCP connection after each kind of
// handshake: what RC4 costs a seeder, next to plaintext. Keep runs short on a shared
// machine (-benchtime=2000x).
func BenchmarkConn(b *testing.B) {
	for _, tc := range []struct {
		name    string
		in, out Encryption
		rc4     bool
	}{
		{"plaintext", Off, Off, false},
		{"obfuscated", Prefer, Prefer, false},
		{"rc4", Prefer, Prefer, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			inCfg := testConfig(1, tc.in, testHash)
			inCfg.PreferRC4 = tc.rc4
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan *Conn, 1)
			go func() {
				conn, err := l.Accept()
				if err != nil {
					accepted <- nil
					return
				}
				c, err := Accept(conn, inCfg)
				if err != nil {
					conn.Close()
				}
				accepted <- c
			}()
			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			out, err := Initiate(conn, testConfig(2, tc.out), testHash)
			if err != nil {
				b.Fatal(err)
			}
			in := <-accepted
			if in == nil {
				b.Fatal("accept failed")
			}
			defer in.Close()

			block := make([]byte, BlockSize)
			done := make(chan error, 1)
			n := b.N
			go func() {
				w := NewWriter(in.Writer)
				for i := range n {
					w.PieceBuffer(uint32(i), 0, BlockSize)
					if i%4 == 3 || i == n-1 {
						if err := w.Flush(); err != nil {
							done <- err
							return
						}
					}
				}
				done <- nil
			}()
			r := NewReader(out.Reader, Limits{})
			r.BlockBuffer = func(uint32, uint32, int) []byte { return block }
			var m Message
			b.SetBytes(BlockSize)
			b.ReportAllocs()
			b.ResetTimer()
			for range n {
				if err := r.Read(&m); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
