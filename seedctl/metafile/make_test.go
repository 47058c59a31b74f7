package metafile

import (
	"context"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAutoPieceLength(t *testing.T) {
	for _, tc := range []struct {
		total, want int64
	}{
		{1, 16 << 10},
		{2000 * 16 << 10, 16 << 10},
		{2000*16<<10 + 1, 32 << 10},
		{2 << 30, 2 << 20},
		{4 << 30, 4 << 20},
		{1 << 40, 16 << 20},
	} {
		if got := AutoPieceLength(tc.total); got != tc.want {
			t.Errorf("AutoPieceLength(%d) = %d, want %d", tc.total, got, tc.want)
		}
		if n := (tc.total + tc.want - 1) / tc.want; tc.total > 2000*16<<10 && tc.want < MaxPieceLength && (n < 1000 || n > 2000) {
			t.Errorf("AutoPieceLength(%d) gives %d pieces", tc.total, n)
		}
	}
}

func TestParsePieceLength(t *testing.T) {
	for in, want := range map[string]int64{
		"auto": 0, "": 0, "16KiB": 16 << 10, "16k": 16 << 10, "256 KiB": 256 << 10, "1M": 1 << 20,
		"16MiB": 16 << 20, "262144": 262144, "4mb": 4 << 20,
	} {
		got, err := ParsePieceLength(in)
		if err != nil || got != want {
			t.Errorf("ParsePieceLength(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"8KiB", "32MiB", "3MiB", "100000", "-1", "abc", "1.5M", "0"} {
		if _, err := ParsePieceLength(in); err == nil {
			t.Errorf("ParsePieceLength(%q): no error", in)
		}
	}
}

// TestMakeSinglePieces checks the v1 piece hashes of a single file by hand.
func TestMakeSinglePieces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	writeFile(t, p, 100000)
	m, err := Make(context.Background(), MakeOptions{Paths: []string{p}, PieceLength: 32 << 10, NoDate: true, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	tor, err := Parse(m.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	for i := 0; i*32<<10 < len(data); i++ {
		end := min((i+1)*32<<10, len(data))
		if h := sha1.Sum(data[i*32<<10 : end]); string(h[:]) != string(tor.Pieces[20*i:20*i+20]) {
			t.Errorf("piece %d hash differs", i)
		}
	}
	if !tor.Single || tor.Name != "f.bin" || tor.Layout.Total != 100000 || m.InfoHash != tor.InfoHash {
		t.Errorf("parsed back: %+v", tor)
	}
}

// TestMakeChangingPayload: a file that vanishes, shrinks or grows between the walk and the
// end of hashing makes Make fail with a clear error.
func TestMakeChangingPayload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(path string) error
		want   string
	}{
		{"vanished", os.Remove, "no such file"},
		{"shrunk", func(p string) error { return os.Truncate(p, 1000) }, "ended early"},
		{"grown", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("more"))
			return err
		}, "changed while"},
		{"touched", func(p string) error {
			// same size, new modification time: rewritten in place, perhaps with other bytes
			return os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
		}, "changed while"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "d", "a.bin"), 50000)
			writeFile(t, filepath.Join(dir, "d", "b.bin"), 50000)
			testHookAfterWalk = func(files []inputFile) {
				if err := tc.change(files[1].osPath); err != nil {
					t.Error(err)
				}
			}
			defer func() { testHookAfterWalk = nil }()
			_, err := Make(context.Background(), MakeOptions{Paths: []string{filepath.Join(dir, "d")}, PieceLength: 16 << 10})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestMakeBadPayload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hidden", ".only"), 10)
	writeFile(t, filepath.Join(dir, "zero", "empty"), 0)
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	os.MkdirAll(filepath.Join(dir, "loop"), 0o755)
	os.Symlink(".", filepath.Join(dir, "loop", "self"))
	writeFile(t, filepath.Join(dir, "loop", "f"), 10)
	os.MkdirAll(filepath.Join(dir, "dangling"), 0o755)
	os.Symlink("nowhere", filepath.Join(dir, "dangling", "x"))
	for _, tc := range []struct {
		paths []string
		want  string
		err   error
	}{
		{[]string{filepath.Join(dir, "nope")}, "no such file", nil},
		{[]string{filepath.Join(dir, "empty")}, "no files", ErrNoFiles},
		{[]string{filepath.Join(dir, "hidden")}, "no files", ErrNoFiles},
		{[]string{filepath.Join(dir, "zero")}, "every file is empty", ErrNoFiles},
		{[]string{filepath.Join(dir, "loop")}, "symbolic link loop", nil},
		{[]string{filepath.Join(dir, "dangling")}, "dangling symbolic link", nil},
		{[]string{filepath.Join(dir, "hidden"), filepath.Join(dir, "zero")}, "give it a --name", nil},
	} {
		_, err := Make(context.Background(), MakeOptions{Paths: tc.paths})
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("Make(%v) = %v, want %q", tc.paths, err, tc.want)
		}
	}
	writeFile(t, filepath.Join(dir, "ok.bin"), 10)
	for _, o := range []MakeOptions{
		{Trackers: [][]string{{"ftp://x/"}}},
		{WebSeeds: []string{"not a url"}},
		{PieceLength: 3 << 20},
		{Exclude: []string{"[bad"}},
		{Name: "a/b"},
	} {
		o.Paths = []string{filepath.Join(dir, "ok.bin")}
		if _, err := Make(context.Background(), o); err == nil {
			t.Errorf("Make(%+v): no error", o)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.torrent")
	if err := WriteFile(p, []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write without force: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("content %q after refused write", b)
	}
	if err := WriteFile(p, []byte("two"), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q after forced write", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644: the web server serves .torrent files", st.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(p, "sub.torrent"), []byte("x"), true); err == nil {
		t.Fatal("write under a regular file: no error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// TestMakeSkipsOutput: re-making a torrent inside the directory it describes leaves the
// old .torrent out of the payload.
func TestMakeSkipsOutput(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.bin"), 5000)
	out := filepath.Join(dir, "d.torrent")
	o := MakeOptions{Paths: []string{dir}, Output: out, NoDate: true}
	m1, err := Make(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(out, m1.Torrent, false); err != nil {
		t.Fatal(err)
	}
	m2, err := Make(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if m1.InfoHash != m2.InfoHash || m2.Files != 1 {
		t.Fatalf("output taken into the payload: %d files", m2.Files)
	}
}

func TestDefaultName(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for in, want := range map[string]string{"a/b.iso": "b.iso", "a/b/": "b", ".": filepath.Base(dir), "x/..": filepath.Base(dir)} {
		if got := DefaultName(in); got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMakeEmptyTier: an empty first tier is skipped, not indexed.
func TestMakeEmptyTier(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.bin"), 100)
	m, err := Make(context.Background(), MakeOptions{Paths: []string{filepath.Join(dir, "a.bin")}, Trackers: [][]string{{}, {"http://t/a"}}})
	if err != nil {
		t.Fatal(err)
	}
	tor, err := Parse(m.Torrent)
	if err != nil || len(tor.Trackers) != 1 || tor.Trackers[0][0] != "http://t/a" {
		t.Fatalf("trackers %v, %v", tor.Trackers, err)
	}
}
