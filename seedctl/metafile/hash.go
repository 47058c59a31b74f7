package metafile

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/sys/unix"

	"github.com/webswarm/webswarm/seedctl/storage"
)

// BlockSize is the BEP 52 merkle leaf size.
const BlockSize = merkle.BlockSize

// chunkSize is how much one worker reads at a time. A multiple of BlockSize, so that v2 leaf
// blocks never straddle two reads, and small enough that a pair of chunks stays in the core's
// L2 cache between the copy out of the page cache and the hashing: 256 KiB used about 10 %
// less CPU than 1 MiB here (and 4 MiB twice as much). Memory is workers × 2 chunks.
const chunkSize = 256 << 10

// maxAutoWorkers caps the default number of hashing goroutines (two chunks of memory each).
const maxAutoWorkers = 16

// fileReader reads payload files; one per worker, so an implementation may cache open handles
// without locking.
type fileReader interface {
	// ReadAt reads len(p) bytes of file f (a non-pad file of the layout) at off.
	ReadAt(f int, p []byte, off int64) (int, error)
	Close() error
}

// hashOpts says what to compute and how.
type hashOpts struct {
	v1, v2 bool
	// workers is the number of hashing goroutines; 0 means GOMAXPROCS.
	workers int
	// keepGoing records a read error against its piece and carries on (verify); otherwise the
	// first error stops everything (make).
	keepGoing bool
	// skip, when set, says a piece need not be read (verify: it touches a missing file); it
	// gets errSkipped.
	skip func(piece int) bool
	// done receives the payload bytes of each finished chunk, for progress.
	done *atomic.Int64
}

// hashed holds per-piece results, indexed by piece.
type hashed struct {
	v1 []byte // 20 bytes per piece
	// v2 is, per piece, the root of the piece's merkle subtree (the BEP 52 piece layer), or
	// for a file no longer than one piece, the file's pieces root.
	v2   [][32]byte
	errs []error // keepGoing only: the read error of each piece, or nil
}

// errSkipped marks pieces not read because of hashOpts.skip.
var errSkipped = errors.New("not read")

// hashPieces hashes every piece of l, reading through readers from newReader, in parallel.
func hashPieces(ctx context.Context, l *storage.Layout, newReader func() fileReader, o hashOpts) (*hashed, error) {
	n := l.NumPieces()
	h := &hashed{}
	if o.v1 {
		h.v1 = make([]byte, 20*n)
	}
	if o.v2 {
		h.v2 = make([][32]byte, n)
	}
	if o.keepGoing {
		h.errs = make([]error, n)
	}
	workers := o.workers
	if workers <= 0 {
		// One per CPU, but at most maxAutoWorkers: each holds two chunk buffers, and past
		// that many a payload read from disk is bound by the disk anyway.
		workers = min(runtime.GOMAXPROCS(0), maxAutoWorkers)
	}
	workers = max(1, min(workers, n))
	// Two pieces at a time through the two-message SHA-1 when v1 hashes are wanted and full
	// pieces are whole SHA-1 blocks (a hybrid's SHA-256 leaves come from the same buffers).
	pairs := have2Lane && !force1Lane && o.v1 && l.PieceLength%64 == 0
	step := int64(1)
	if pairs {
		step = 2
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &hashWorker{l: l, r: newReader(), o: &o, buf: make([]byte, chunkSize)}
			if pairs {
				w.buf2 = make([]byte, chunkSize)
			}
			defer w.r.Close()
			// single hashes piece i alone; false means stop.
			single := func(i int) bool {
				if o.skip != nil && o.skip(i) {
					h.errs[i] = errSkipped
					return true
				}
				var s1 [20]byte
				var s2 [32]byte
				if err := w.piece(i, &s1, &s2); err != nil {
					if o.keepGoing {
						h.errs[i] = err
						return true
					}
					cancel(err)
					return false
				}
				if o.v1 {
					copy(h.v1[20*i:], s1[:])
				}
				if o.v2 {
					h.v2[i] = s2
				}
				return true
			}
			for ctx.Err() == nil {
				i := int(next.Add(step) - step)
				if i >= n {
					return
				}
				if pairs && i+1 < n && l.PieceSize(i+1) == l.PieceLength && (o.skip == nil || !o.skip(i) && !o.skip(i+1)) {
					var a, b [20]byte
					var a2, b2 [32]byte
					if w.pair(i, &a, &b, &a2, &b2) == nil {
						copy(h.v1[20*i:], a[:])
						copy(h.v1[20*(i+1):], b[:])
						if o.v2 {
							h.v2[i], h.v2[i+1] = a2, b2
						}
						continue
					}
					// A read error: hash each piece alone so that each gets its own error.
				}
				for j := i; j < min(i+int(step), n); j++ {
					if !single(j) {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// force1Lane turns off the two-message SHA-1 (tests compare both paths).
var force1Lane = false

// hashWorker hashes one piece (or two) at a time with its own buffers and reader.
type hashWorker struct {
	l       *storage.Layout
	r       fileReader
	o       *hashOpts
	buf     []byte
	buf2    []byte // second message of pair
	spans   []storage.Span
	leaves  [][32]byte
	leaves2 [][32]byte // second piece of pair
	sp      sha1Pair
}

// pair computes the hashes of full pieces i and i+1 together, chunk by chunk: v1 through the
// two-message SHA-1, and with v2 the merkle leaves of each piece's file bytes.
func (w *hashWorker) pair(i int, a, b *[20]byte, a2, b2 *[32]byte) error {
	plen := w.l.PieceLength
	offA, offB := w.l.PieceOffset(i), w.l.PieceOffset(i+1)
	w.sp.reset()
	w.leaves, w.leaves2 = w.leaves[:0], w.leaves2[:0]
	fileA, fileB := -1, -1
	var added int64
	for done := int64(0); done < plen; {
		k := min(plen-done, chunkSize)
		if err := w.fill(w.buf[:k], offA+done, &w.leaves, &fileA); err != nil {
			w.progress(-added)
			return err
		}
		if err := w.fill(w.buf2[:k], offB+done, &w.leaves2, &fileB); err != nil {
			w.progress(-added)
			return err
		}
		w.sp.write(w.buf[:k], w.buf2[:k])
		done += k
		added += 2 * k
		w.progress(2 * k)
	}
	w.sp.sums(a, b)
	if w.o.v2 {
		if fileA >= 0 {
			*a2 = pieceRoot(w.leaves, w.l.Files[fileA].Length, plen)
		}
		if fileB >= 0 {
			*b2 = pieceRoot(w.leaves2, w.l.Files[fileB].Length, plen)
		}
	}
	return nil
}

// fill reads stream bytes [off, off+len(buf)) into buf, pad files as zeros. With v2 it also
// appends the SHA-256 of each 16 KiB block of file bytes to leaves and notes the file: in a v2
// layout a piece holds bytes of at most one file, starting at a block boundary.
func (w *hashWorker) fill(buf []byte, off int64, leaves *[][32]byte, file *int) error {
	w.spans = w.l.Spans(w.spans[:0], off, int64(len(buf)))
	p := int64(0)
	for _, sp := range w.spans {
		dst := buf[p : p+sp.Length]
		p += sp.Length
		if w.l.Files[sp.File].Pad {
			clear(dst)
			continue
		}
		if _, err := w.r.ReadAt(sp.File, dst, sp.Offset); err != nil {
			return err
		}
		if w.o.v2 {
			*file = sp.File
			for b := 0; b < len(dst); b += BlockSize {
				*leaves = append(*leaves, sha256.Sum256(dst[b:min(b+BlockSize, len(dst))]))
			}
		}
	}
	return nil
}

func (w *hashWorker) progress(n int64) {
	if w.o.done != nil {
		w.o.done.Add(n)
	}
}

var zeroChunk = make([]byte, chunkSize)

func (w *hashWorker) piece(i int, s1 *[20]byte, s2 *[32]byte) error {
	w.spans = w.l.PieceSpans(w.spans[:0], i)
	sum := sha1.New()
	w.leaves = w.leaves[:0]
	v2File := -1
	for _, sp := range w.spans {
		f := &w.l.Files[sp.File]
		for done := int64(0); done < sp.Length; {
			k := min(sp.Length-done, chunkSize)
			var chunk []byte
			if f.Pad {
				chunk = zeroChunk[:k]
			} else {
				chunk = w.buf[:k]
				if _, err := w.r.ReadAt(sp.File, chunk, sp.Offset+done); err != nil {
					return err
				}
			}
			if w.o.v1 {
				sum.Write(chunk)
			}
			if w.o.v2 && !f.Pad {
				v2File = sp.File
				for b := 0; b < len(chunk); b += BlockSize {
					w.leaves = append(w.leaves, sha256.Sum256(chunk[b:min(b+BlockSize, len(chunk))]))
				}
			}
			done += k
			if w.o.done != nil {
				w.o.done.Add(k)
			}
		}
	}
	if w.o.v1 {
		sum.Sum(s1[:0])
	}
	if w.o.v2 && v2File >= 0 {
		*s2 = pieceRoot(w.leaves, w.l.Files[v2File].Length, w.l.PieceLength)
	}
	return nil
}

// pieceRoot is the BEP 52 hash of one piece's blocks: for a file longer than a piece, the root
// of a subtree of pieceLength/BlockSize leaves (missing leaves are zero); for a file that fits
// in one piece, the file's own root (leaves padded to a power of two).
func pieceRoot(leaves [][32]byte, fileLength, pieceLength int64) [32]byte {
	width := int(pieceLength / BlockSize)
	if fileLength <= pieceLength {
		width = int(merkle.RoundUpToPowerOfTwo(uint(len(leaves))))
	}
	return merkle.RootWithPadHash(append(leaves[:len(leaves):len(leaves)], make([][32]byte, width-len(leaves))...), [32]byte{})
}

// fileRoot is a BEP 52 "pieces root" from a file's piece-layer hashes.
func fileRoot(layer [][32]byte, pieceLength int64) [32]byte {
	return merkle.RootWithPadHash(layer, metainfo.HashForPiecePad(pieceLength))
}

var _ fileReader = (*osReader)(nil)

// osReader reads the layout's files from disk by OS path, keeping the last file open.
type osReader struct {
	paths []string // per layout file; "" for pad files
	cur   int
	f     *os.File
	// open is os.Open, or a wrapper (verify caches failures).
	open func(f int, path string) (*os.File, error)
}

func (r *osReader) ReadAt(f int, p []byte, off int64) (int, error) {
	if r.f == nil || r.cur != f {
		if r.f != nil {
			r.f.Close()
			r.f = nil
		}
		file, err := r.open(f, r.paths[f])
		if err != nil {
			return 0, err
		}
		// Workers take consecutive pieces, so reads are nearly sequential: a larger
		// readahead window helps a payload that is not in the page cache. Advice only.
		_ = unix.Fadvise(int(file.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
		r.f, r.cur = file, f
	}
	n, err := r.f.ReadAt(p, off)
	if err == io.EOF && n < len(p) {
		return n, fmt.Errorf("%s: %w", r.paths[f], errShortFile)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read %s: %w", r.paths[f], err)
	}
	return n, nil
}

func (r *osReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// errShortFile is wrapped when a file ends before the layout says it should.
var errShortFile = errors.New("file ended early")
