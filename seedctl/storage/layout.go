// Package storage maps a torrent's files onto its pieces: the byte stream of BEP 3 (every file
// concatenated in order, pad files of BEP 47 included) cut into pieces of one fixed length.
//
// A Layout answers which byte ranges of which files make up a piece, and which pieces a file
// touches. It knows nothing of hashing or of the network: the torrent maker, the verifier and
// the peer engine all read and write payload through it.
//
// Files is the payload on disk: positional reads and writes (pread/pwrite) across file
// boundaries, BEP 47 pad files as zeros that never reach the disk, sparse allocation, a
// bounded LRU of open handles that concurrent readers share without a lock, and SendTo, the
// seeding hot path, which hands file bytes to a TCP socket with sendfile(2).
//
// Files remembers the state of every file when it was opened (size, modification and change
// time, device and inode): the state its pieces were verified in. A handle opened again
// (after eviction) is fstat-ed and refused with ErrChanged when it is not that file any
// more, so a file renamed over the path or written meanwhile is never read as if verified.
// Changes stats every file by path and says how each changed (modified, truncated, deleted,
// replaced); Rebase accepts the new states once the caller has stopped counting their
// pieces as verified, and Stamps gives the accepted states for a resume record, never what
// is on disk now. A file seen changed within the clock tick of its last write stays racy
// (Racy) and is reported once more when quiet, since a second write in that tick shows in
// no stat. Writes through Files itself are not changes.
package storage

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// File is one entry of a torrent's file list, in torrent order.
type File struct {
	// Path is the file's path inside the torrent, one element per component (for a
	// single-file torrent: just the name).
	Path []string
	// Length is the file's size in bytes.
	Length int64
	// Pad marks a BEP 47 padding file: Length zero bytes that exist only in the piece
	// stream, never on disk.
	Pad bool
	// Offset is where the file starts in the piece stream; NewLayout sets it.
	Offset int64
}

// Span is a contiguous byte range of one file.
type Span struct {
	File   int   // index into Layout.Files
	Offset int64 // offset inside the file
	Length int64
}

// Layout is a torrent's files placed on its pieces. Build it with NewLayout; it is immutable
// afterwards and safe for concurrent use.
type Layout struct {
	Files       []File
	PieceLength int64
	Total       int64 // sum of all file lengths, pad files included
}

// MaxTotal bounds a torrent's total length (1 PiB): larger values are treated as hostile,
// and keeping far from MaxInt64 makes offset arithmetic overflow-free.
const MaxTotal = 1 << 50

// ErrBadLayout is wrapped by every error NewLayout returns.
var ErrBadLayout = errors.New("bad file layout")

// NewLayout places files one after another and returns the layout. It rejects a piece
// length that is not positive, negative file lengths and a total above MaxTotal.
func NewLayout(files []File, pieceLength int64) (*Layout, error) {
	if pieceLength <= 0 {
		return nil, fmt.Errorf("%w: piece length %d", ErrBadLayout, pieceLength)
	}
	l := &Layout{Files: make([]File, len(files)), PieceLength: pieceLength}
	var off int64
	for i, f := range files {
		if f.Length < 0 || f.Length > MaxTotal {
			return nil, fmt.Errorf("%w: file %d has length %d", ErrBadLayout, i, f.Length)
		}
		f.Offset = off
		off += f.Length
		if off > MaxTotal {
			return nil, fmt.Errorf("%w: total length over %d bytes", ErrBadLayout, int64(MaxTotal))
		}
		l.Files[i] = f
	}
	l.Total = off
	return l, nil
}

// NumPieces is the number of pieces: the total length divided by the piece length, rounded up.
func (l *Layout) NumPieces() int {
	n := (l.Total + l.PieceLength - 1) / l.PieceLength
	if n > math.MaxInt32 {
		// Unreachable for totals under MaxTotal with sane piece lengths; guards 32-bit callers.
		return math.MaxInt32
	}
	return int(n)
}

// PieceOffset is where piece i starts in the stream.
func (l *Layout) PieceOffset(i int) int64 { return int64(i) * l.PieceLength }

// PieceSize is the length of piece i: PieceLength, except for a shorter last piece.
func (l *Layout) PieceSize(i int) int64 {
	start := l.PieceOffset(i)
	return min(l.PieceLength, l.Total-start)
}

// fileAt returns the index of the first file with a byte at stream offset off (zero-length
// files hold no bytes and are skipped).
func (l *Layout) fileAt(off int64) int {
	return sort.Search(len(l.Files), func(i int) bool {
		f := l.Files[i]
		return f.Offset+f.Length > off
	})
}

// Spans appends to dst the file ranges holding stream bytes [off, off+n) and returns it.
// Zero-length files produce no span.
func (l *Layout) Spans(dst []Span, off, n int64) []Span {
	if off < 0 || n <= 0 || off >= l.Total {
		return dst
	}
	end := min(off+n, l.Total)
	for i := l.fileAt(off); i < len(l.Files) && off < end; i++ {
		f := l.Files[i]
		if f.Length == 0 {
			continue
		}
		inFile := off - f.Offset
		take := min(f.Length-inFile, end-off)
		dst = append(dst, Span{File: i, Offset: inFile, Length: take})
		off += take
	}
	return dst
}

// PieceSpans appends the file ranges making up piece i to dst and returns it.
func (l *Layout) PieceSpans(dst []Span, i int) []Span {
	return l.Spans(dst, l.PieceOffset(i), l.PieceSize(i))
}

// FilePieces returns the range [first, end) of pieces holding bytes of file f; first == end
// for a zero-length file.
func (l *Layout) FilePieces(f int) (first, end int) {
	file := l.Files[f]
	if file.Length == 0 {
		p := int(file.Offset / l.PieceLength)
		return p, p
	}
	first = int(file.Offset / l.PieceLength)
	end = int((file.Offset + file.Length + l.PieceLength - 1) / l.PieceLength)
	return first, end
}
