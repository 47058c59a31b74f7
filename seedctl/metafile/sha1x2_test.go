package metafile

import (
	"context"
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestSHA1Pair(t *testing.T) {
	if !have2Lane {
		t.Skip("no SHA extensions on this CPU")
	}
	r := rand.NewChaCha8([32]byte{7})
	for _, n := range []int{0, 64, 128, 640, 16384, 1 << 20, 3<<20 + 64} {
		a := make([]byte, n)
		b := make([]byte, n)
		r.Read(a)
		r.Read(b)
		var p sha1Pair
		p.reset()
		// in uneven steps, as the worker's chunks come
		for off := 0; off < n; {
			k := min(n-off, 64*(1+off%5)*1024)
			p.write(a[off:off+k], b[off:off+k])
			off += k
		}
		var x, y [20]byte
		p.sums(&x, &y)
		if x != sha1.Sum(a) || y != sha1.Sum(b) {
			t.Fatalf("%d bytes: two-message SHA-1 differs from crypto/sha1", n)
		}
	}
}

// TestTwoLaneSameTorrent: the two-message path and the plain path make the same torrent,
// for payloads whose pieces straddle many files, pad files, and odd piece counts; and verify
// finds the same single bad piece through both.
func TestTwoLaneSameTorrent(t *testing.T) {
	if !have2Lane {
		t.Skip("no SHA extensions on this CPU")
	}
	dir := t.TempDir()
	r := rand.NewChaCha8([32]byte{9})
	for i, size := range []int{1, 700, 16384, 5000, 100000, 0, 33333, 70000, 12} {
		b := make([]byte, size)
		r.Read(b)
		p := filepath.Join(dir, "d", string(rune('a'+i))+".bin")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	big := make([]byte, 7<<20+123)
	r.Read(big)
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	for _, tc := range []struct {
		path string
		plen int64
	}{{"d", 16 << 10}, {"d", 64 << 10}, {"big.bin", 1 << 20}, {"big.bin", 2 << 20}, {"big.bin", 16 << 10}} {
		for _, hybrid := range []bool{false, true} {
			make1 := func(one bool, workers int) *Made {
				force1Lane = one
				defer func() { force1Lane = false }()
				m, err := Make(context.Background(), MakeOptions{Paths: []string{filepath.Join(dir, tc.path)}, PieceLength: tc.plen, NoDate: true, Workers: workers, Hybrid: hybrid})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			want := make1(true, 1)
			for _, workers := range []int{1, 2, 3} {
				if got := make1(false, workers); string(got.Torrent) != string(want.Torrent) {
					t.Fatalf("%s/%d hybrid=%v, %d workers: two-message SHA-1 made a different torrent", tc.path, tc.plen, hybrid, workers)
				}
			}
		}
	}
	// One flipped byte in piece 5 of big.bin: both paths report exactly piece 5.
	m := func() *Made {
		m, err := Make(context.Background(), MakeOptions{Paths: []string{filepath.Join(dir, "big.bin")}, PieceLength: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}()
	tor, _ := Parse(m.Torrent)
	big[5*64<<10+100] ^= 1
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	for _, one := range []bool{false, true} {
		force1Lane = one
		rep, err := Verify(context.Background(), tor, dir, VerifyOptions{})
		force1Lane = false
		if err != nil || len(rep.Bad) != 1 || rep.Bad[0] != 5 {
			t.Fatalf("one lane=%v: bad pieces %v (%v)", one, rep.Bad, err)
		}
	}
}

// BenchmarkSHA1 compares crypto/sha1 with the two-message function on 1 MiB chunks, one
// core (go test -bench SHA1 -cpu 1): the reason sha1x2_amd64.s exists.
func BenchmarkSHA1(b *testing.B) {
	x, y := make([]byte, 1<<20), make([]byte, 1<<20)
	b.Run("crypto-sha1", func(b *testing.B) {
		b.SetBytes(2 << 20)
		for b.Loop() {
			sha1.Sum(x)
			sha1.Sum(y)
		}
	})
	b.Run("two-message", func(b *testing.B) {
		if !have2Lane {
			b.Skip("no SHA extensions")
		}
		b.SetBytes(2 << 20)
		var p sha1Pair
		var s1, s2 [20]byte
		for b.Loop() {
			p.reset()
			p.write(x, y)
			p.sums(&s1, &s2)
		}
	})
}
