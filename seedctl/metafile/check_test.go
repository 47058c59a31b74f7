package metafile

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/webswarm/webswarm/seedctl/storage"
)

// checkPayload makes a torrent of three files (sizes around piece boundaries) and opens its
// payload.
func checkPayload(t *testing.T, hybrid bool) (*Torrent, *storage.Files, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "pl")
	r := rand.New(rand.NewPCG(1, 2))
	for name, size := range map[string]int{"a": 100 << 10, "b": 7, "c/d": 300<<10 + 5} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Make(context.Background(), MakeOptions{Paths: []string{root}, PieceLength: 32 << 10, NoDate: true, Hybrid: hybrid})
	if err != nil {
		t.Fatal(err)
	}
	tor, err := Parse(m.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	f, err := storage.Open(tor.Layout, dir, tor.Name, tor.Single, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return tor, f, root
}

func TestCheckPieces(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		tor, f, root := checkPayload(t, hybrid)
		n := tor.Layout.NumPieces()
		var done atomic.Int64
		good, err := tor.CheckPieces(context.Background(), f, CheckOptions{Workers: 3, Done: &done})
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range good {
			if !ok {
				t.Fatalf("hybrid=%v: intact piece %d fails", hybrid, i)
			}
		}
		if done.Load() != tor.Layout.Total {
			t.Fatalf("hybrid=%v: progress %d of %d bytes", hybrid, done.Load(), tor.Layout.Total)
		}
		// Every piece passes CheckPiece too, and fails with one bit flipped or cut short.
		for i := range n {
			data := make([]byte, tor.Layout.PieceSize(i))
			if _, err := f.ReadAt(data, tor.Layout.PieceOffset(i)); err != nil {
				t.Fatal(err)
			}
			if !tor.CheckPiece(i, data) {
				t.Fatalf("hybrid=%v: CheckPiece(%d) of intact data false", hybrid, i)
			}
			data[len(data)/2] ^= 1
			if tor.CheckPiece(i, data) {
				t.Fatalf("hybrid=%v: CheckPiece(%d) of changed data true", hybrid, i)
			}
			if tor.CheckPiece(i, data[:len(data)-1]) || tor.CheckPiece(n+i, data) || tor.CheckPiece(-1, data) {
				t.Fatalf("hybrid=%v: CheckPiece accepts a wrong length or index", hybrid)
			}
		}

		// One byte changed on disk: that piece alone fails.
		p := filepath.Join(root, "c", "d")
		b, _ := os.ReadFile(p)
		b[200<<10] ^= 0x40
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		bad := int((tor.Layout.Files[fileIndex(t, tor, "c", "d")].Offset + 200<<10) / tor.PieceLength)
		good, err = tor.CheckPieces(context.Background(), f, CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range good {
			if ok == (i == bad) {
				t.Fatalf("hybrid=%v: piece %d ok=%v with piece %d corrupted", hybrid, i, ok, bad)
			}
		}
		// Want: only the chosen pieces are read; the rest come back false.
		done.Store(0)
		good, err = tor.CheckPieces(context.Background(), f, CheckOptions{Want: func(i int) bool { return i == 1 }, Done: &done})
		if err != nil {
			t.Fatal(err)
		}
		if !good[1] || good[0] || done.Load() != tor.Layout.PieceSize(1) {
			t.Fatalf("hybrid=%v: Want one piece: good[0]=%v good[1]=%v, %d bytes read", hybrid, good[0], good[1], done.Load())
		}
		// A truncated file: its pieces fail, no error.
		if err := os.Truncate(p, 10); err != nil {
			t.Fatal(err)
		}
		good, err = tor.CheckPieces(context.Background(), f, CheckOptions{})
		if err != nil || !good[0] || good[n-1] {
			t.Fatalf("hybrid=%v: truncated file: %v (first %v, last %v)", hybrid, err, good[0], good[n-1])
		}
	}
}

func TestCheckPiecesCancelled(t *testing.T) {
	tor, f, _ := checkPayload(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tor.CheckPieces(ctx, f, CheckOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled check: %v", err)
	}
}

func fileIndex(t *testing.T, tor *Torrent, path ...string) int {
	t.Helper()
	for i, f := range tor.Layout.Files {
		if !f.Pad && filepath.Join(f.Path...) == filepath.Join(path...) {
			return i
		}
	}
	t.Fatalf("no file %v", path)
	return -1
}
