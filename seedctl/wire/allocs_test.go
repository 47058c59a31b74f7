//go:build !race

package wire

import (
	"bufio"
	"io"
	"testing"
)

// TestZeroAllocs pins what the benchmarks show (0 allocs/op for the hot messages), so a
// regression fails go test. Not under -race, which allocates on its own.
func TestZeroAllocs(t *testing.T) {
	decoders := []struct {
		name string
		m    Message
	}{
		{"have", Message{ID: Have, Index: 3}},
		{"request", Message{ID: Request, Index: 1, Begin: 16384, Length: 16384}},
		{"piece", Message{ID: Piece, Index: 7, Block: make([]byte, BlockSize)}},
		{"keep-alive", Message{ID: KeepAlive}},
		{"choke", Message{ID: Choke}},
	}
	block := make([]byte, BlockSize)
	for _, tc := range decoders {
		var batch []byte
		for range 16 {
			batch = AppendMessage(batch, &tc.m)
		}
		r := NewReader(bufio.NewReaderSize(&loopReader{data: batch}, 64<<10), Limits{NumPieces: 10,
			ValidRequest: func(index, begin, length uint32) bool { return true }})
		r.BlockBuffer = func(index, begin uint32, n int) []byte { return block }
		var m Message
		if a := testing.AllocsPerRun(200, func() {
			if err := r.Read(&m); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("decode %s: %v allocs, want 0", tc.name, a)
		}
	}
	w := NewWriter(io.Discard)
	for name, f := range map[string]func(){
		"have":         func() { w.Have(1) },
		"request":      func() { w.Request(1, 0, BlockSize) },
		"cancel":       func() { w.Cancel(1, 0, BlockSize) },
		"piece header": func() { w.PieceBuffer(1, 0, BlockSize) },
		"unchoke":      func() { w.Unchoke() },
	} {
		f()
		w.Flush() // the buffer has grown to its working size
		if a := testing.AllocsPerRun(200, func() { f(); f(); w.Flush() }); a != 0 {
			t.Errorf("encode %s: %v allocs, want 0", name, a)
		}
	}
}
