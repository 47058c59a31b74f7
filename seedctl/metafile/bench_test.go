package metafile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// benchPayload writes a 64 MiB file once per benchmark.
func benchPayload(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.bin")
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkMake hashes a 64 MiB file (warm page cache) with 1 worker and with one per CPU.
// scripts/bench-make.sh compares the whole program with mktorrent.
func BenchmarkMake(b *testing.B) {
	p := benchPayload(b)
	for _, bc := range []struct {
		name    string
		workers int
		hybrid  bool
	}{{"v1-1worker", 1, false}, {"v1-allcpus", 0, false}, {"hybrid-allcpus", 0, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(64 << 20)
			for b.Loop() {
				if _, err := Make(context.Background(), MakeOptions{Paths: []string{p}, PieceLength: 1 << 20, Workers: bc.workers, Hybrid: bc.hybrid}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify re-hashes the same 64 MiB file against its torrent.
func BenchmarkVerify(b *testing.B) {
	p := benchPayload(b)
	m, err := Make(context.Background(), MakeOptions{Paths: []string{p}, PieceLength: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	tor, err := Parse(m.Torrent)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	for b.Loop() {
		rep, err := Verify(context.Background(), tor, filepath.Dir(p), VerifyOptions{})
		if err != nil || !rep.OK {
			b.Fatalf("%v %+v", err, rep)
		}
	}
}
