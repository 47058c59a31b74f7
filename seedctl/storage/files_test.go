package storage

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// testLayout is a multi-file layout with an empty file, pad files and a file crossing
// several pieces: every boundary case of Spans in 3 pieces of 16 bytes... scaled by unit.
func testLayout(t testing.TB, unit int64) *Layout {
	t.Helper()
	l, err := NewLayout([]File{
		{Path: []string{"a"}, Length: 10 * unit},
		{Path: []string{"empty"}, Length: 0},
		{Path: []string{".pad", "6"}, Length: 6 * unit, Pad: true},
		{Path: []string{"dir", "b"}, Length: 25 * unit},
		{Path: []string{".pad", "7"}, Length: 7 * unit, Pad: true},
		{Path: []string{"dir", "sub", "c"}, Length: 4 * unit},
	}, 16*unit)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// stream returns pseudo-random payload bytes for l with zeros in pad files.
func stream(l *Layout, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, l.Total)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for _, f := range l.Files {
		if f.Pad {
			clear(b[f.Offset : f.Offset+f.Length])
		}
	}
	return b
}

// writePayload writes data as l's files under dir/name with os.WriteFile (not through Files).
func writePayload(t testing.TB, l *Layout, dir, name string, data []byte) {
	t.Helper()
	for _, f := range l.Files {
		if f.Pad {
			continue
		}
		p := filepath.Join(append([]string{dir, name}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilesRoundTripAcrossBoundaries(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	f, err := Open(l, dir, "tor", false, OpenOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range []string{"a", "empty", "dir/b", "dir/sub/c"} {
		if _, err := os.Stat(filepath.Join(dir, "tor", p)); err != nil {
			t.Fatalf("not created: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tor", ".pad")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pad file written to disk: %v", err)
	}
	want := stream(l, 1)
	// Write with non-zero bytes where the pad files are: they must be dropped.
	dirty := bytes.Clone(want)
	for _, file := range l.Files {
		if file.Pad {
			for k := file.Offset; k < file.Offset+file.Length; k++ {
				dirty[k] = 0xEE
			}
		}
	}
	// Every write size from 1 to 9 bytes at shifting offsets crosses every boundary.
	r := rand.New(rand.NewPCG(2, 2))
	for off := int64(0); off < l.Total; {
		n := min(int64(1+r.IntN(9)), l.Total-off)
		if k, err := f.WriteAt(dirty[off:off+n], off); err != nil || int64(k) != n {
			t.Fatalf("WriteAt(%d, %d) = %d, %v", off, n, k, err)
		}
		off += n
	}
	for off := int64(0); off < l.Total; off++ {
		for n := int64(1); off+n <= l.Total && n <= 20; n++ {
			got := make([]byte, n)
			if k, err := f.ReadAt(got, off); err != nil || int64(k) != n {
				t.Fatalf("ReadAt(%d, %d) = %d, %v", off, n, k, err)
			}
			if !bytes.Equal(got, want[off:off+n]) {
				t.Fatalf("ReadAt(%d, %d) = %x, want %x", off, n, got, want[off:off+n])
			}
		}
	}
	// The files on disk hold exactly the non-pad bytes.
	for _, file := range l.Files {
		if file.Pad {
			continue
		}
		disk, err := os.ReadFile(filepath.Join(append([]string{dir, "tor"}, file.Path...)...))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(disk, want[file.Offset:file.Offset+file.Length]) {
			t.Fatalf("%v on disk differs", file.Path)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestFilesReadAtEnd(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	want := stream(l, 3)
	writePayload(t, l, dir, "tor", want)
	f, err := Open(l, dir, "tor", false, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, 10)
	n, err := f.ReadAt(p, l.Total-4)
	if n != 4 || err != io.EOF || !bytes.Equal(p[:4], want[l.Total-4:]) {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if n, err := f.ReadAt(p, l.Total); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(Total) = %d, %v", n, err)
	}
	if _, err := f.ReadAt(p, -1); !errors.Is(err, ErrRange) {
		t.Fatalf("ReadAt(-1) = %v", err)
	}
	if _, err := f.WriteAt(p, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("WriteAt on read-only = %v", err)
	}
	if _, err := f.ReadFileAt(0, p, 1); !errors.Is(err, ErrRange) {
		t.Fatalf("ReadFileAt past the file's length = %v", err)
	}
}

func TestFilesWriteOutOfRange(t *testing.T) {
	l := testLayout(t, 1)
	f, err := Open(l, t.TempDir(), "tor", false, OpenOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{-1, l.Total - 3, l.Total, 1 << 62} {
		if n, err := f.WriteAt(make([]byte, 4), off); !errors.Is(err, ErrRange) || n != 0 {
			t.Errorf("WriteAt(4 bytes at %d) = %d, %v; want ErrRange", off, n, err)
		}
	}
	for _, tc := range [][2]int64{{-1, 1}, {0, -1}, {l.Total - 1, 2}, {1 << 62, 1 << 62}} {
		if _, err := f.SendTo(io.Discard, tc[0], tc[1]); !errors.Is(err, ErrRange) {
			t.Errorf("SendTo(%d, %d) = %v; want ErrRange", tc[0], tc[1], err)
		}
	}
}

func TestFilesSingle(t *testing.T) {
	l, err := NewLayout([]File{{Path: []string{"one.iso"}, Length: 1000}}, 256)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := Open(l, dir, "one.iso", true, OpenOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	data := stream(l, 4)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(filepath.Join(dir, "one.iso"))
	if err != nil || !bytes.Equal(disk, data) {
		t.Fatalf("single file at dir/name: %v", err)
	}
	if f.Path(0) != filepath.Join(dir, "one.iso") {
		t.Fatalf("Path(0) = %s", f.Path(0))
	}
}

func TestFilesSparse(t *testing.T) {
	const size = 64 << 20
	l, err := NewLayout([]File{{Path: []string{"big"}, Length: size}, {Path: []string{"small"}, Length: 5}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := Open(l, dir, "t", false, OpenOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := os.Stat(filepath.Join(dir, "t", "big"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Fatalf("size %d, want %d", st.Size(), size)
	}
	blocks := st.Sys().(*syscall.Stat_t).Blocks * 512
	if blocks > 1<<20 {
		t.Fatalf("a fresh %d-byte file uses %d bytes on disk: not sparse", size, blocks)
	}
	// A short existing file is extended, not rewritten: its bytes stay.
	small := filepath.Join(dir, "t", "small")
	if err := os.WriteFile(small, []byte("ab"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(l, dir, "t", false, OpenOptions{Write: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(small); string(b) != "ab\x00\x00\x00" {
		t.Fatalf("extended short file = %q", b)
	}
}

func TestOpenReadOnlyMissingOrShort(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	data := stream(l, 5)
	writePayload(t, l, dir, "tor", data)
	b := filepath.Join(dir, "tor", "dir", "b")

	if err := os.Truncate(b, 24); err != nil {
		t.Fatal(err)
	}
	_, err := Open(l, dir, "tor", false, OpenOptions{})
	if !errors.Is(err, ErrShort) || !strings.Contains(err.Error(), b) {
		t.Fatalf("short file: %v; want ErrShort naming %s", err, b)
	}

	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	_, err = Open(l, dir, "tor", false, OpenOptions{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), b) {
		t.Fatalf("missing file: %v; want fs.ErrNotExist naming %s", err, b)
	}
	// A missing empty file is not needed to seed.
	if err := os.Remove(filepath.Join(dir, "tor", "empty")); err != nil {
		t.Fatal(err)
	}

	f, err := Open(l, dir, "tor", false, OpenOptions{AllowMissing: true})
	if err != nil {
		t.Fatalf("AllowMissing: %v", err)
	}
	defer f.Close()
	p := make([]byte, 4)
	if _, err := f.ReadAt(p, l.Files[3].Offset); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading a missing file: %v", err)
	}
	if _, err := f.ReadAt(p, 0); err != nil || !bytes.Equal(p, data[:4]) {
		t.Fatalf("reading a present file: %v", err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st[3].Size != -1 || st[0].Size != 10 || st[0].ModTime == 0 || st[2] != (FileStamp{}) {
		t.Fatalf("Stat = %+v", st)
	}

	// A file created (short) after Open: not the file Open saw, ErrChanged on read, naming it.
	if err := os.WriteFile(b, data[l.Files[3].Offset:l.Files[3].Offset+3], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(p, l.Files[3].Offset); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), b) {
		t.Fatalf("reading a short file: %v", err)
	}
}

func TestOpenNotRegular(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	writePayload(t, l, dir, "tor", stream(l, 6))
	c := filepath.Join(dir, "tor", "dir", "sub", "c")
	if err := os.Remove(c); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(c, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, w := range []bool{false, true} {
		if _, err := Open(l, dir, "tor", false, OpenOptions{Write: w}); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Write=%v: a directory in place of a file: %v", w, err)
		}
	}
}

func TestOpenRefusesUnsafePaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		path []string
	}{
		{"tor", []string{".."}},
		{"tor", []string{"a", "..", "b"}},
		{"tor", []string{"a/../../b"}},
		{"tor", []string{`..\x`}},
		{"tor", []string{""}},
		{"tor", []string{"."}},
		{"tor", []string{"nul\x00"}},
		{"tor", []string{}},
		{"..", []string{"a"}},
		{"x/y", []string{"a"}},
	} {
		l, err := NewLayout([]File{{Path: tc.path, Length: 1}}, 16)
		if err != nil {
			t.Fatal(err)
		}
		base := t.TempDir()
		dir := filepath.Join(base, "d")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(l, dir, tc.name, false, OpenOptions{Write: true}); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("name %q path %q: %v; want ErrUnsafePath", tc.name, tc.path, err)
		}
		outside, _ := os.ReadDir(base)
		inside, _ := os.ReadDir(dir)
		if len(outside) != 1 || len(inside) != 0 {
			t.Errorf("name %q path %q: something was created", tc.name, tc.path)
		}
	}
	l, _ := NewLayout([]File{{Path: []string{"a"}, Length: 1}, {Path: []string{"b"}, Length: 1}}, 16)
	if _, err := Open(l, t.TempDir(), "t", true, OpenOptions{}); !errors.Is(err, ErrBadLayout) {
		t.Errorf("single with two files: %v", err)
	}
}

// countFDs is the number of open file descriptors of this process.
func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestFilesLRUBoundUnderConcurrentReads(t *testing.T) {
	const nfiles, maxOpen, readers = 40, 4, 8
	files := make([]File, nfiles)
	for i := range files {
		files[i] = File{Path: []string{string(rune('a'+i%26)) + string(rune('a'+i/26))}, Length: int64(100 + i)}
	}
	l, err := NewLayout(files, 64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := stream(l, 7)
	writePayload(t, l, dir, "many", data)
	before := countFDs(t)
	f, err := Open(l, dir, "many", false, OpenOptions{MaxOpen: maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var maxFDs sync.Map
	errs := make(chan error, readers)
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			p := make([]byte, 300)
			for k := range 500 {
				off := r.Int64N(l.Total)
				n := 1 + r.IntN(len(p))
				got, err := f.ReadAt(p[:n], off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(p[:got], data[off:off+int64(got)]) {
					errs <- errors.New("bytes differ")
					return
				}
				if k%50 == 0 {
					maxFDs.Store(countFDs(t)-before, true)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f.mu.Lock()
	cached := len(f.open)
	f.mu.Unlock()
	if cached > maxOpen {
		t.Fatalf("%d handles cached, MaxOpen %d", cached, maxOpen)
	}
	if n := countFDs(t) - before; n > maxOpen {
		t.Fatalf("%d descriptors open after the reads, MaxOpen %d", n, maxOpen)
	}
	// While reading, an evicted handle may stay open until its read ends: at most one per
	// reader beyond the bound.
	maxFDs.Range(func(k, _ any) bool {
		if k.(int) > maxOpen+readers {
			t.Errorf("%d descriptors open during reads, bound %d", k.(int), maxOpen+readers)
		}
		return true
	})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countFDs(t) - before; n != 0 {
		t.Fatalf("%d descriptors still open after Close", n)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if err := f.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFilesLRUKeepsRecentlyUsed(t *testing.T) {
	files := make([]File, 3)
	for i := range files {
		files[i] = File{Path: []string{string(rune('a' + i))}, Length: 10}
	}
	l, _ := NewLayout(files, 16)
	dir := t.TempDir()
	writePayload(t, l, dir, "t", stream(l, 8))
	f, err := Open(l, dir, "t", false, OpenOptions{MaxOpen: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, 1)
	for _, file := range []int{0, 1, 0, 2} { // 0 used after 1: opening 2 evicts 1
		if _, err := f.ReadFileAt(file, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	if f.slots[0].h.Load() == nil || f.slots[1].h.Load() != nil || f.slots[2].h.Load() == nil {
		t.Fatalf("cached after 0,1,0,2 with MaxOpen 2: %v %v %v; want 0 and 2",
			f.slots[0].h.Load() != nil, f.slots[1].h.Load() != nil, f.slots[2].h.Load() != nil)
	}
}

func TestFilesSyncAfterEviction(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	f, err := Open(l, dir, "tor", false, OpenOptions{Write: true, MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	data := stream(l, 9)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	for i := range f.slots {
		if !l.Files[i].Pad && l.Files[i].Length > 0 && !f.slots[i].dirty.Load() {
			t.Fatalf("file %d written but not dirty", i)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range f.slots {
		if f.slots[i].dirty.Load() {
			t.Fatalf("file %d still dirty after Sync", i)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := Open(l, dir, "tor", false, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := make([]byte, l.Total)
	if _, err := g.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
}
