package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Errors of Files, classified with errors.Is; each is wrapped with the file or range it is
// about.
var (
	// ErrShort: a payload file is shorter than the torrent says.
	ErrShort = errors.New("file shorter than in the torrent")
	// ErrUnsafePath: a path component would leave the payload directory ("..", "/", ...).
	ErrUnsafePath = errors.New("unsafe path component")
	// ErrRange: an offset or length outside the torrent's byte stream.
	ErrRange = errors.New("outside the payload")
	// ErrReadOnly: a write to Files opened without OpenOptions.Write.
	ErrReadOnly = errors.New("payload opened read-only")
	// ErrClosed: use of Files after Close.
	ErrClosed = errors.New("payload closed")
	// ErrNotRegular: a payload path names a directory, device or other non-regular file.
	ErrNotRegular = errors.New("not a regular file")
)

var (
	_ io.ReaderAt = (*Files)(nil)
	_ io.WriterAt = (*Files)(nil)
)

// DefaultMaxOpen is the bound on open file handles when OpenOptions.MaxOpen is 0.
const DefaultMaxOpen = 128

// OpenOptions tunes Open.
type OpenOptions struct {
	// Write creates missing directories and files, extends short files to their length
	// sparsely (truncate, never writing zeros) and opens files read-write.
	Write bool
	// MaxOpen bounds the file handles kept open (least recently used are closed first);
	// 0 means DefaultMaxOpen.
	MaxOpen int
	// AllowMissing (read-only) opens even when files are missing or short, for a check that
	// only counts what is there; reading those files then fails with the same errors Open
	// would have returned.
	AllowMissing bool
}

// FileStamp is what Stat reports of one layout file: enough to tell whether it changed.
type FileStamp struct {
	// Size is the file's size on disk; -1 when the file does not exist.
	Size int64
	// ModTime is the modification time in Unix nanoseconds (0 when missing).
	ModTime int64
}

// Files is a torrent's payload on disk under dir (dir holds the single file, or the top folder
// named after the torrent for a multi-file torrent: dir/Name/path...). Reads and writes are
// positional (pread/pwrite) on a bounded cache of open handles; it is safe for concurrent use,
// and concurrent reads of files already open take no lock.
type Files struct {
	l       *Layout
	paths   []string // by layout file; "" for pad files
	write   bool
	maxOpen int

	slots []slot
	// base is every file's state when the pieces were verified (Open, then Rebase): reads
	// refuse a handle that does not match it, and Stamps reports it.
	baseMu sync.Mutex
	base   []fileState
	racy   []bool       // see racyWindow
	racyN  atomic.Int32 // racy files
	clock  atomic.Int64 // advanced on every open; the LRU's notion of time
	bufs   sync.Pool    // *[]byte of copyChunk bytes for SendTo's copy path

	mu     sync.Mutex // guards open, closed and closeErr; never held while reading
	open   []int      // indexes of slots with a cached handle, at most maxOpen
	closed bool
	// closeErr is the first error closing a read-write handle: data may not have reached
	// the disk, so Sync and Close report it.
	closeErr error
}

// slot is one layout file's cache entry.
type slot struct {
	h     atomic.Pointer[handle]
	used  atomic.Int64 // clock value at the last use
	dirty atomic.Bool  // written since the last Sync
	wrote atomic.Bool  // written since the last Changes
}

// handle is an open file shared by the cache and the reads in flight: the cache holds one
// reference, each read another, and the last one out closes the file. So an evicted file is
// never closed under a read (or a sendfile) using it.
type handle struct {
	f    *os.File
	refs atomic.Int32
}

// tryRef takes a reference unless the handle is already on its way to being closed.
func (h *handle) tryRef() bool {
	for {
		r := h.refs.Load()
		if r <= 0 {
			return false
		}
		if h.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// Open opens the payload of a torrent laid out as l, under dir. Name is the torrent's name
// (the single file's name, or the top folder's). Without Write every non-empty file must exist
// at its full length (unless AllowMissing): a missing one is an error wrapping fs.ErrNotExist,
// a short one ErrShort, each naming the file. Path components are checked again here even
// though metafile refuses unsafe ones: "", ".", "..", and names holding '/', '\\' or NUL are
// ErrUnsafePath.
func Open(l *Layout, dir, name string, single bool, o OpenOptions) (*Files, error) {
	if single && len(l.Files) != 1 {
		return nil, fmt.Errorf("%w: single-file payload with %d files", ErrBadLayout, len(l.Files))
	}
	if err := checkComponent(name); err != nil {
		return nil, fmt.Errorf("torrent name: %w", err)
	}
	f := &Files{
		l:       l,
		paths:   make([]string, len(l.Files)),
		write:   o.Write,
		maxOpen: o.MaxOpen,
		slots:   make([]slot, len(l.Files)),
	}
	if f.maxOpen <= 0 {
		f.maxOpen = DefaultMaxOpen
	}
	f.bufs.New = func() any { b := make([]byte, copyChunk); return &b }
	for i, file := range l.Files {
		if file.Pad {
			continue
		}
		if single {
			f.paths[i] = filepath.Join(dir, name)
			continue
		}
		parts := make([]string, 0, len(file.Path)+2)
		parts = append(parts, dir, name)
		for _, c := range file.Path {
			if err := checkComponent(c); err != nil {
				return nil, fmt.Errorf("file %d (%s): %w", i, strings.Join(file.Path, "/"), err)
			}
			parts = append(parts, c)
		}
		if len(file.Path) == 0 {
			return nil, fmt.Errorf("file %d: %w: empty path", i, ErrUnsafePath)
		}
		f.paths[i] = filepath.Join(parts...)
	}
	for i, file := range l.Files {
		if file.Pad {
			continue
		}
		var err error
		if o.Write {
			err = allocate(f.paths[i], file.Length)
		} else if !o.AllowMissing {
			err = f.present(i)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := f.snapshot(); err != nil {
		return nil, err
	}
	return f, nil
}

// checkComponent refuses a path component that could leave the directory it is joined under.
func checkComponent(c string) error {
	if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\\x00") {
		return fmt.Errorf("%w: %q", ErrUnsafePath, c)
	}
	return nil
}

// allocate creates path (and its directories) if missing and extends it to length without
// writing: the file is sparse until the pieces arrive. A longer file is left alone.
func allocate(path string, length int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("create payload file: %w", err)
	}
	st, err := file.Stat()
	if err == nil && st.Size() < length {
		err = file.Truncate(length)
	}
	if cerr := file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("allocate %s: %w", path, err)
	}
	return nil
}

// present checks that layout file i exists as a regular file of at least its length. Empty
// files hold no bytes to serve and are not required.
func (f *Files) present(i int) error {
	want := f.l.Files[i].Length
	if want == 0 {
		return nil
	}
	st, err := os.Stat(f.paths[i])
	switch {
	case err != nil:
		return err // *fs.PathError naming the file; wraps fs.ErrNotExist when missing
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: %w", f.paths[i], ErrNotRegular)
	case st.Size() < want:
		return fmt.Errorf("%s: %d of %d bytes: %w", f.paths[i], st.Size(), want, ErrShort)
	}
	return nil
}

// Layout is the layout the payload was opened with.
func (f *Files) Layout() *Layout { return f.l }

// Path is the OS path of layout file i ("" for a pad file).
func (f *Files) Path(i int) string { return f.paths[i] }

// acquire returns an open handle of layout file i with a reference the caller releases.
func (f *Files) acquire(i int) (*handle, error) {
	s := &f.slots[i]
	if h := s.h.Load(); h != nil && h.tryRef() {
		// Exact LRU order at the cost of one atomic add when the reader switches files;
		// repeated reads of the most recent file only read the shared clock.
		if s.used.Load() != f.clock.Load() {
			s.used.Store(f.clock.Add(1))
		}
		return h, nil
	}
	return f.openSlot(i)
}

// openSlot opens layout file i into the cache, evicting the least recently used handle when
// the cache is full.
func (f *Files) openSlot(i int) (*handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	s := &f.slots[i]
	// Another goroutine may have opened it meanwhile. Under mu a cached handle always
	// holds the cache's reference, so tryRef cannot fail here.
	if h := s.h.Load(); h != nil && h.tryRef() {
		return h, nil
	}
	flag := os.O_RDONLY
	if f.write {
		flag = os.O_RDWR
	}
	file, err := os.OpenFile(f.paths[i], flag, 0)
	if err != nil {
		return nil, err // *fs.PathError: names the file, wraps fs.ErrNotExist
	}
	// One fstat an open (not a read): a file renamed over the path, or written while its
	// handle was out of the cache, is not the one the pieces were verified against.
	if fi, err := file.Stat(); err != nil || !f.sameFile(i, fi) {
		file.Close()
		if err == nil {
			err = ErrChanged
		}
		return nil, fmt.Errorf("open %s: %w", f.paths[i], err)
	}
	for len(f.open) >= f.maxOpen {
		f.evictLocked()
	}
	h := &handle{f: file}
	h.refs.Store(2) // the cache's and the caller's
	s.h.Store(h)
	s.used.Store(f.clock.Add(1))
	f.open = append(f.open, i)
	return h, nil
}

// evictLocked drops the cache's reference to the least recently used handle.
func (f *Files) evictLocked() {
	victim := 0
	for k, i := range f.open {
		if f.slots[i].used.Load() < f.slots[f.open[victim]].used.Load() {
			victim = k
		}
	}
	i := f.open[victim]
	f.open[victim] = f.open[len(f.open)-1]
	f.open = f.open[:len(f.open)-1]
	h := f.slots[i].h.Swap(nil)
	f.releaseLocked(h)
}

// release drops a reference taken by acquire.
func (f *Files) release(h *handle) {
	if h.refs.Add(-1) == 0 {
		f.mu.Lock()
		f.closeHandleLocked(h)
		f.mu.Unlock()
	}
}

func (f *Files) releaseLocked(h *handle) {
	if h.refs.Add(-1) == 0 {
		f.closeHandleLocked(h)
	}
}

func (f *Files) closeHandleLocked(h *handle) {
	if err := h.f.Close(); err != nil && f.write && f.closeErr == nil {
		f.closeErr = err
	}
}

// ReadAt reads len(p) stream bytes at offset off (BEP 3's concatenation of the files), across
// file boundaries; pad files read as zeros. Like io.ReaderAt it returns io.EOF with fewer bytes
// at the end of the stream. A file that ends early is ErrShort, naming the file.
func (f *Files) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: %w", off, ErrRange)
	}
	if off >= f.l.Total {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.l.Total-off))
	var buf [4]Span
	done := 0
	for _, sp := range f.l.Spans(buf[:0], off, int64(n)) {
		dst := p[done : done+int(sp.Length)]
		if f.l.Files[sp.File].Pad {
			clear(dst)
		} else if k, err := f.ReadFileAt(sp.File, dst, sp.Offset); err != nil {
			return done + k, err
		}
		done += len(dst)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ReadFileAt reads len(p) bytes of layout file i at offset off inside it; a pad file reads as
// zeros. Reading past the file's length in the torrent is ErrRange; a file that ends early on
// disk is ErrShort.
func (f *Files) ReadFileAt(i int, p []byte, off int64) (int, error) {
	file := &f.l.Files[i]
	if off < 0 || off+int64(len(p)) > file.Length {
		return 0, fmt.Errorf("read %d bytes at %d of file %d (%d bytes): %w", len(p), off, i, file.Length, ErrRange)
	}
	if file.Pad {
		clear(p)
		return len(p), nil
	}
	h, err := f.acquire(i)
	if err != nil {
		return 0, err
	}
	n, err := h.f.ReadAt(p, off)
	f.release(h)
	if err == io.EOF || err == nil && n < len(p) {
		return n, fmt.Errorf("%s: ends before byte %d: %w", f.paths[i], off+int64(len(p)), ErrShort)
	}
	if err != nil {
		return n, fmt.Errorf("read %s: %w", f.paths[i], err)
	}
	return n, nil
}

// WriteAt writes p at stream offset off, across file boundaries; the bytes of pad files are
// dropped. It needs OpenOptions.Write. Writing past the end of the stream is ErrRange and
// writes nothing.
func (f *Files) WriteAt(p []byte, off int64) (int, error) {
	if !f.write {
		return 0, ErrReadOnly
	}
	if off < 0 || off > f.l.Total-int64(len(p)) {
		return 0, fmt.Errorf("write %d bytes at %d of %d: %w", len(p), off, f.l.Total, ErrRange)
	}
	var buf [4]Span
	done := 0
	for _, sp := range f.l.Spans(buf[:0], off, int64(len(p))) {
		src := p[done : done+int(sp.Length)]
		if !f.l.Files[sp.File].Pad {
			h, err := f.acquire(sp.File)
			if err != nil {
				return done, err
			}
			f.slots[sp.File].dirty.Store(true)
			f.slots[sp.File].wrote.Store(true)
			k, err := h.f.WriteAt(src, sp.Offset)
			f.release(h)
			if err != nil {
				return done + k, fmt.Errorf("write %s: %w", f.paths[sp.File], err)
			}
		}
		done += len(src)
	}
	return done, nil
}

// Stat returns the size and modification time of every layout file, in layout order; pad
// files get a zero stamp and missing files Size -1.
func (f *Files) Stat() ([]FileStamp, error) {
	out := make([]FileStamp, len(f.l.Files))
	for i, file := range f.l.Files {
		if file.Pad {
			continue
		}
		st, err := os.Stat(f.paths[i])
		if errors.Is(err, fs.ErrNotExist) {
			out[i] = FileStamp{Size: -1}
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = FileStamp{Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	}
	return out, nil
}

// Sync flushes every file written since the last Sync to stable storage (fsync), opening it
// again if its handle was evicted meanwhile. It also reports an earlier failure to close a
// written file.
func (f *Files) Sync() error {
	if !f.write {
		return nil
	}
	var first error
	for i := range f.slots {
		s := &f.slots[i]
		if !s.dirty.Swap(false) {
			continue
		}
		h, err := f.acquire(i)
		if err == nil {
			err = h.f.Sync()
			f.release(h)
		}
		if err != nil {
			s.dirty.Store(true)
			if first == nil {
				first = fmt.Errorf("sync %s: %w", f.paths[i], err)
			}
		}
	}
	f.mu.Lock()
	if first == nil {
		first = f.closeErr
	}
	f.closeErr = nil
	f.mu.Unlock()
	return first
}

// Close closes every cached handle (reads in flight finish first: their handles close when
// they end). Later calls fail with ErrClosed. It does not Sync.
func (f *Files) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.closed = true
	for _, i := range f.open {
		f.releaseLocked(f.slots[i].h.Swap(nil))
	}
	f.open = nil
	err := f.closeErr
	f.closeErr = nil
	return err
}
