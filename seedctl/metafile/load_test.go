package metafile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

func torrentBytes(t *testing.T, info map[string]any) []byte {
	t.Helper()
	b, err := bencode.Marshal(map[string]any{"announce": "http://127.0.0.1/announce", "info": info})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func multiInfo(files ...map[string]any) map[string]any {
	var l []any
	var total int64
	for _, f := range files {
		l = append(l, f)
		total += f["length"].(int64)
	}
	n := max(1, (total+16383)/16384)
	return map[string]any{"name": "x", "piece length": int64(16384), "pieces": strings.Repeat("a", int(20*n)), "files": l}
}

func file(length int64, path ...string) map[string]any {
	return map[string]any{"length": length, "path": path}
}

// TestParseHostile: every torrent here could make a careless reader touch a path outside
// its data directory or allocate without bound. Parse must refuse each with an error.
func TestParseHostile(t *testing.T) {
	deep := "d4:info" + strings.Repeat("l", 5000) + strings.Repeat("e", 5000) + "e"
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"dotdot", torrentBytes(t, multiInfo(file(10, "..", "escape.txt"))), ErrUnsafe},
		{"dot", torrentBytes(t, multiInfo(file(10, ".", "a"))), ErrUnsafe},
		{"absolute", torrentBytes(t, multiInfo(file(10, "/etc/passwd"))), ErrUnsafe},
		{"slash inside", torrentBytes(t, multiInfo(file(10, "a/../../b"))), ErrUnsafe},
		{"empty component", torrentBytes(t, multiInfo(file(10, "a", "", "b"))), ErrUnsafe},
		{"empty path", torrentBytes(t, multiInfo(map[string]any{"length": int64(10), "path": []string{}})), ErrUnsafe},
		{"NUL", torrentBytes(t, multiInfo(file(10, "a\x00b"))), ErrUnsafe},
		{"name dotdot", torrentBytes(t, map[string]any{"name": "..", "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrUnsafe},
		{"name absolute", torrentBytes(t, map[string]any{"name": "/etc", "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrUnsafe},
		{"empty name", torrentBytes(t, map[string]any{"name": "", "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrUnsafe},
		{"huge length", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(1) << 60}), ErrMalformed},
		{"piece count mismatch", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(1) << 40}), ErrMalformed},
		{"negative length", torrentBytes(t, multiInfo(file(-5, "a"), file(20, "b"))), ErrMalformed},
		{"zero piece length", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(0), "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrMalformed},
		{"huge piece length", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(1) << 40, "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrMalformed},
		{"pieces not 20n", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "pieces": "abc", "length": int64(10)}), ErrMalformed},
		{"no hashes", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "length": int64(10)}), ErrMalformed},
		{"length and files", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(10), "files": []any{file(10, "a")}}), ErrMalformed},
		{"v2 tree dotdot", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "meta version": int64(2),
			"file tree": map[string]any{"..": map[string]any{"": map[string]any{"length": int64(10), "pieces root": strings.Repeat("r", 32)}}}}), ErrUnsafe},
		{"v2 bad root", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "meta version": int64(2),
			"file tree": map[string]any{"a": map[string]any{"": map[string]any{"length": int64(10), "pieces root": "short"}}}}), ErrMalformed},
		{"v2 missing layer", torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "meta version": int64(2),
			"file tree": map[string]any{"a": map[string]any{"": map[string]any{"length": int64(100000), "pieces root": strings.Repeat("r", 32)}}}}), ErrMalformed},
		{"deep nesting", []byte(deep), ErrMalformed},
		{"lying string length", []byte("d4:info99999999999:abce"), ErrMalformed},
		{"truncated", torrentBytes(t, multiInfo(file(10, "a")))[:40], ErrMalformed},
		{"trailing garbage", append(torrentBytes(t, multiInfo(file(10, "a"))), "xyz"...), ErrMalformed},
		{"not bencode", []byte("<html>404</html>"), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"no info", []byte("d8:announce3:abce"), ErrMalformed},
		{"integer key", []byte("di1ei2ee"), ErrMalformed},
		{"leading zero overflow", []byte("d4:infoi99999999999999999999999ee"), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse: %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
		})
	}
}

func TestCheckBencode(t *testing.T) {
	for _, ok := range []string{"i0e", "i-5e", "0:", "le", "de", "d1:ai1ee", "l1:a1:bd1:cleee"} {
		if _, err := checkBencode([]byte(ok)); err != nil {
			t.Errorf("checkBencode(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "i", "ie", "i1", "5:ab", "l", "d1:ae", "d1:a", "e", "x", "i1ei2e", "5a", "di1e1:ae"} {
		if _, err := checkBencode([]byte(bad)); err == nil {
			t.Errorf("checkBencode(%q): no error", bad)
		}
	}
}

// TestVerifyReport: corrupted, short and missing files are each reported with their pieces.
func TestVerifyReport(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"a.bin": 40000, "b.bin": 40000, "c.bin": 40000} {
		writeFile(t, filepath.Join(dir, "d", name), size)
	}
	for _, hybrid := range []bool{false, true} {
		m, err := Make(context.Background(), MakeOptions{Paths: []string{filepath.Join(dir, "d")}, PieceLength: 16 << 10, Hybrid: hybrid})
		if err != nil {
			t.Fatal(err)
		}
		tor, err := Parse(m.Torrent)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(context.Background(), tor, dir, VerifyOptions{})
		if err != nil || !rep.OK || rep.Good != rep.Pieces {
			t.Fatalf("hybrid=%v: clean verify: %+v %v", hybrid, rep, err)
		}
		data := t.TempDir()
		for _, n := range []string{"a.bin", "b.bin"} {
			b, _ := os.ReadFile(filepath.Join(dir, "d", n))
			os.MkdirAll(filepath.Join(data, "d"), 0o755)
			os.WriteFile(filepath.Join(data, "d", n), b, 0o644)
		}
		// a.bin: one byte flipped; b.bin: short; c.bin: missing.
		b, _ := os.ReadFile(filepath.Join(data, "d", "a.bin"))
		b[20000] ^= 1
		os.WriteFile(filepath.Join(data, "d", "a.bin"), b, 0o644)
		os.Truncate(filepath.Join(data, "d", "b.bin"), 30000)
		rep, err = Verify(context.Background(), tor, data, VerifyOptions{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK {
			t.Fatal("verify of damaged data says OK")
		}
		got := map[string]string{}
		for _, p := range rep.Problems {
			got[filepath.Base(p.Path)] = p.Problem
		}
		if got["b.bin"] != "short" || got["c.bin"] != "missing" || len(got) != 2 {
			t.Errorf("hybrid=%v: problems %+v", hybrid, rep.Problems)
		}
		bad := map[string]int{}
		for _, f := range rep.Files {
			bad[filepath.Base(f.Path)] = f.BadPieces
		}
		if bad["a.bin"] != 1 || bad["b.bin"] == 0 || bad["c.bin"] < 3 {
			t.Errorf("hybrid=%v: bad files %+v (ranges %s)", hybrid, rep.Files, rep.BadRanges)
		}
	}
	if _, err := Verify(context.Background(), &Torrent{}, filepath.Join(dir, "nope"), VerifyOptions{}); err == nil {
		t.Error("verify with a missing data directory: no error")
	}
}

func TestFormatRanges(t *testing.T) {
	if got := formatRanges([]int{0, 1, 2, 5, 7, 8}); got != "0-2, 5, 7-8" {
		t.Errorf("formatRanges = %q", got)
	}
}

// FuzzParse: no input makes Parse panic, and whatever it accepts has a consistent layout.
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "d")
	os.MkdirAll(filepath.Join(p, "s"), 0o755)
	os.WriteFile(filepath.Join(p, "a"), []byte(strings.Repeat("x", 40000)), 0o644)
	os.WriteFile(filepath.Join(p, "s", "b"), []byte("hello"), 0o644)
	for _, hybrid := range []bool{false, true} {
		m, err := Make(context.Background(), MakeOptions{Paths: []string{p}, Hybrid: hybrid, Trackers: [][]string{{"http://a/"}}, WebSeeds: []string{"http://w/"}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Torrent)
	}
	f.Add([]byte("d4:infod4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa6:lengthi10eee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tor, err := Parse(data)
		if err != nil {
			return
		}
		if tor.Layout.Total <= 0 || (tor.HasV1 && len(tor.Pieces) != 20*tor.Layout.NumPieces()) {
			t.Fatalf("accepted an inconsistent torrent: total %d, %d hash bytes, %d pieces", tor.Layout.Total, len(tor.Pieces), tor.Layout.NumPieces())
		}
		for _, fl := range tor.Layout.Files {
			for _, c := range fl.Path {
				if checkComponent(c) != nil {
					t.Fatalf("accepted unsafe path %q", fl.Path)
				}
			}
		}
		_ = Summarize(tor)
	})
}
