package metafile

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"sync/atomic"

	"github.com/webswarm/webswarm/seedctl/storage"
)

// PieceReader is what CheckPieces reads payload through. ReadFileAt reads len(p) bytes of
// layout file f (never a pad file) at offset off inside it; it must be safe for concurrent
// use. *storage.Files is one.
type PieceReader interface {
	ReadFileAt(f int, p []byte, off int64) (int, error)
}

var _ PieceReader = (*storage.Files)(nil)

// CheckOptions tunes CheckPieces.
type CheckOptions struct {
	// Workers is the number of hashing goroutines; 0 means one per CPU, at most 16.
	Workers int
	// Want selects the pieces to hash; nil means all. The others come back false.
	Want func(piece int) bool
	// Done, when set, grows by the payload bytes of every piece chunk hashed (for progress).
	Done *atomic.Int64
}

// CheckPieces hashes the pieces of t that o.Want selects, in parallel, reading through r with
// the same large sequential reads and two-message SHA-1 as Make and Verify, and returns per
// piece whether it matched t: its v1 SHA-1 and, for v2 and hybrid torrents, its BEP 52 hash.
// A piece that could not be read (missing or short file) is false, not an error: only ctx's
// cancellation is returned.
func (t *Torrent) CheckPieces(ctx context.Context, r PieceReader, o CheckOptions) ([]bool, error) {
	l := t.Layout
	n := l.NumPieces()
	opts := hashOpts{v1: t.HasV1, v2: t.HasV2, workers: o.Workers, keepGoing: true, done: o.Done}
	if o.Want != nil {
		opts.skip = func(i int) bool { return !o.Want(i) }
	}
	h, err := hashPieces(ctx, l, func() fileReader { return sharedReader{r} }, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	good := make([]bool, n)
	var spans []storage.Span
	for i := range n {
		if h.errs[i] != nil {
			continue
		}
		spans = l.PieceSpans(spans[:0], i)
		var v1 []byte
		var v2 [32]byte
		if t.HasV1 {
			v1 = h.v1[20*i : 20*i+20]
		}
		if t.HasV2 {
			v2 = h.v2[i]
		}
		good[i] = t.pieceMatches(i, spans, v1, v2)
	}
	return good, nil
}

// CheckPiece reports whether data, pad bytes included, is piece i of t: its v1 SHA-1 and, for
// v2 and hybrid torrents, its BEP 52 hash. Data of the wrong length never matches.
func (t *Torrent) CheckPiece(i int, data []byte) bool {
	l := t.Layout
	if i < 0 || i >= l.NumPieces() || int64(len(data)) != l.PieceSize(i) {
		return false
	}
	spans := l.PieceSpans(nil, i)
	var v1 [20]byte
	if t.HasV1 {
		v1 = sha1.Sum(data)
	}
	var v2 [32]byte
	if t.HasV2 {
		var leaves [][32]byte
		file := -1
		p := int64(0)
		for _, sp := range spans {
			if !l.Files[sp.File].Pad {
				file = sp.File
				for b := p; b < p+sp.Length; b += BlockSize {
					leaves = append(leaves, sha256.Sum256(data[b:min(b+BlockSize, p+sp.Length)]))
				}
			}
			p += sp.Length
		}
		if file >= 0 {
			v2 = pieceRoot(leaves, l.Files[file].Length, l.PieceLength)
		}
	}
	return t.pieceMatches(i, spans, v1[:], v2)
}

// pieceMatches compares the computed hashes of piece i, made of spans, with t's: v1 (20 bytes)
// when t has v1, v2 when t has v2.
func (t *Torrent) pieceMatches(i int, spans []storage.Span, v1 []byte, v2 [32]byte) bool {
	if t.HasV1 && !bytes.Equal(v1, t.Pieces[20*i:20*i+20]) {
		return false
	}
	if t.HasV2 {
		if want, has := t.expectedV2(i, spans); has && want != v2 {
			return false
		}
	}
	return true
}

// sharedReader adapts a PieceReader, shared by all workers, to the per-worker fileReader.
type sharedReader struct{ r PieceReader }

func (s sharedReader) ReadAt(f int, p []byte, off int64) (int, error) {
	return s.r.ReadFileAt(f, p, off)
}

func (s sharedReader) Close() error { return nil }
