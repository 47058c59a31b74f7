package metafile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/storage"
)

// manyFiles is a v1 torrent listing n one-byte files (the shape of issue 12's 35 MB torrent
// of 1M files), built without the bencode encoder so that a million files stay cheap.
func manyFiles(n int) []byte {
	var b bytes.Buffer
	b.WriteString("d4:infod5:filesl")
	for i := range n {
		p := fmt.Sprintf("f%07d", i)
		fmt.Fprintf(&b, "d6:lengthi1e4:pathl%d:%see", len(p), p)
	}
	pieces := (n + 16383) / 16384
	fmt.Fprintf(&b, "e4:name1:x12:piece lengthi16384e6:pieces%d:%see", 20*pieces, strings.Repeat("a", 20*pieces))
	return b.Bytes()
}

// TestParseLimits: each torrent here is valid bencode that a reader must refuse before it
// costs memory or work out of proportion (issue 12, item 13).
func TestParseLimits(t *testing.T) {
	pad := func(n int64) map[string]any {
		return map[string]any{"length": n, "path": []string{".pad", fmt.Sprint(n)}, "attr": "p"}
	}
	tree := func(names ...string) map[string]any {
		d := map[string]any{}
		for _, n := range names {
			d[n] = map[string]any{"": map[string]any{"length": int64(10), "pieces root": strings.Repeat("r", 32)}}
		}
		return d
	}
	small := Limits{MaxSize: 1 << 20, MaxFiles: 3, MaxPieces: 4}
	for _, tc := range []struct {
		name string
		lim  Limits
		data []byte
		want error // nil: accepted
	}{
		{"piece length 1", Limits{}, torrentBytes(t, map[string]any{"name": "x", "piece length": int64(1), "pieces": strings.Repeat("a", 200), "length": int64(10)}), ErrMalformed},
		{"piece length 8 KiB", Limits{}, torrentBytes(t, map[string]any{"name": "x", "piece length": int64(8 << 10), "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrMalformed},
		{"piece length 16 KiB", Limits{}, torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16 << 10), "pieces": strings.Repeat("a", 20), "length": int64(10)}), nil},
		{"same path twice", Limits{}, torrentBytes(t, multiInfo(file(10, "a", "b"), file(10, "a", "b"))), ErrUnsafe},
		{"file and directory", Limits{}, torrentBytes(t, multiInfo(file(10, "a"), file(10, "a", "b"))), ErrUnsafe},
		{"directory and file", Limits{}, torrentBytes(t, multiInfo(file(10, "a", "b", "c"), file(10, "a-"), file(10, "a", "b"))), ErrUnsafe},
		{"pad files share a path", Limits{}, torrentBytes(t, multiInfo(file(10, "a"), pad(16374), file(10, "b"), pad(16374), file(10, "c"))), nil},
		{"prefix is not a parent", Limits{}, torrentBytes(t, multiInfo(file(10, "a"), file(10, "ab"), file(10, "a-", "b"))), nil},
		{"files at the limit", small, torrentBytes(t, multiInfo(file(10, "a"), file(10, "b"), file(10, "c"))), nil},
		{"files over the limit", small, torrentBytes(t, multiInfo(file(10, "a"), file(10, "b"), file(10, "c"), file(10, "d"))), ErrLimit},
		{"v2 files over the limit", small, torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "meta version": int64(2),
			"file tree": map[string]any{"d": tree("a", "b"), "e": tree("c", "d")}}), ErrLimit},
		{"pieces over the limit", small, torrentBytes(t, map[string]any{"name": "x", "piece length": int64(16384), "pieces": strings.Repeat("a", 20*5), "length": int64(5 * 16384)}), ErrLimit},
		{"size over the limit", Limits{MaxSize: 1 << 10}, torrentBytes(t, map[string]any{"name": strings.Repeat("x", 1<<10), "piece length": int64(16384), "pieces": strings.Repeat("a", 20), "length": int64(10)}), ErrLimit},
		// Values outside the file list (10M empty web seeds cost 1.25 GB to show) are bounded
		// too: 30 a file allowed, plus 1,000.
		{"values over the limit", Limits{MaxFiles: 10}, []byte("d8:url-listl" + strings.Repeat("0:", 1300) + "e4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:" + strings.Repeat("a", 20) + "ee"), ErrLimit},
		{"values at the limit", Limits{MaxFiles: 10}, []byte("d8:url-listl" + strings.Repeat("0:", 1280) + "e4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:" + strings.Repeat("a", 20) + "ee"), nil},
		// A second "info" key that a decoder may keep instead of the first is counted too.
		{"second info key", small, []byte("d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae" +
			"4:infod5:filesld6:lengthi1e4:pathl1:aeed6:lengthi1e4:pathl1:beed6:lengthi1e4:pathl1:ceed6:lengthi1e4:pathl1:deee" +
			"4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"), ErrLimit},
	} {
		_, err := tc.lim.Parse(tc.data)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestParseManyFilesBounded: a torrent of 1M files is refused by its file count before its
// file list is decoded: the refusal allocates next to nothing (issue 12: 490 MB to show it).
func TestParseManyFilesBounded(t *testing.T) {
	data := manyFiles(1_000_000)
	lim := Limits{MaxSize: int64(len(data))} // the size alone lets it through
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := lim.Parse(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("1M files: %v, want ErrLimit", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing %d bytes of 1M files allocated %d bytes, want under 1 MiB", len(data), got)
	}
}

// TestLoadNotRegular: Load refuses a FIFO (without waiting for a writer), a link to a
// device and a directory.
func TestLoadNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.torrent")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	zero := filepath.Join(dir, "zero.torrent")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zero, dir} {
		err := testenv.NotBlockedByFIFO(t, fifo, func() error {
			_, err := Load(p)
			return err
		})
		if !errors.Is(err, storage.ErrNotRegular) {
			t.Errorf("Load(%s): %v, want ErrNotRegular", filepath.Base(p), err)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain name.iso":          "plain name.iso",
		"Ünïcödé 日本語":             "Ünïcödé 日本語",
		"\x1b]0;pwned\x07title":   `\x1b]0;pwned\atitle`,
		"a\x1b[2Jb":               `a\x1b[2Jb`,
		"line\nbreak\r\t":         `line\nbreak\r\t`,
		"c1 \u009b31m csi":        `c1 \u009b31m csi`,
		"bidi \u202egnp.exe":      `bidi \u202egnp.exe`,
		"bad utf-8 \xff\xfe":      `bad utf-8 \xff\xfe`,
		`back\slash`:              `back\\slash`,
		"del \x7f nul \x00":       `del \x7f nul \x00`,
		"replacement char \ufffd": "replacement char \ufffd",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	s := &Summary{Name: "n\x1b[31m", Comment: "c\x1b]8;;http://evil\x07", CreatedBy: "\x1b[?1049h", Source: "s\x9b",
		Files: []FileInfo{{Path: "n\x1b[31m/f\x1bP", Length: 1}}, Trackers: [][]string{{"http://t/\x1b[1m"}}, WebSeeds: []string{"http://w/\x1b"}}
	if out := s.Text(); strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Errorf("Text() holds raw control characters:\n%q", out)
	}
}
