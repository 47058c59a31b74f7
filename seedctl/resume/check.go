package resume

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Mode says how much of the payload Check hashes. The zero value is Full.
type Mode int

// Check modes; see the package documentation.
const (
	Full Mode = iota
	Fast
	None
)

var modeNames = [...]string{Full: "full", Fast: "fast", None: "none"}

// ParseMode parses "full", "fast" or "none" (any case).
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("check mode %q: want full, fast or none", s)
}

// String is the mode's name as ParseMode reads it.
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// Progress is how far a check is, in payload bytes to hash (pad bytes included).
type Progress struct{ Done, Total int64 }

// progressInterval is how often Check reports progress while hashing.
const progressInterval = 100 * time.Millisecond

// HashPiece reports whether data is the whole piece i of t (its v1 SHA-1, and for v2 and
// hybrid torrents its BEP 52 hash too).
func HashPiece(t *metafile.Torrent, i int, data []byte) bool { return t.CheckPiece(i, data) }

// Check returns the pieces of t that f holds, according to mode (see the package
// documentation); rec may be nil. A record of another torrent is ErrMismatch; a record whose
// bitfield or file list does not fit t is not used (Fast then hashes everything). Hashing
// uses workers goroutines (0: one per CPU); progress, when not nil, is called from one
// goroutine at a time, at the start, every 100 ms while hashing and once at the end. Only
// cancellation of ctx or a failure to stat the payload stop the check with an error: pieces
// that cannot be read are simply not held.
func Check(ctx context.Context, t *metafile.Torrent, f *storage.Files, mode Mode, rec *Record,
	workers int, progress func(Progress)) (wire.Bitfield, error) {
	l := t.Layout
	n := l.NumPieces()
	have := wire.NewBitfield(n)
	if rec != nil && rec.InfoHash != t.InfoHash {
		return have, fmt.Errorf("%w: record for info-hash %x, torrent is %x", ErrMismatch, rec.InfoHash, t.InfoHash)
	}
	if mode < Full || mode > None {
		return have, fmt.Errorf("check: unknown %v", mode)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	if mode == Full {
		return have, hash(ctx, t, f, &have, nil, workers, progress)
	}
	stamps, err := f.Stat()
	if err != nil {
		return have, fmt.Errorf("check: %w", err)
	}
	var spans []storage.Span
	// allFiles reports whether every file of piece i passes ok.
	allFiles := func(i int, ok func(file int) bool) bool {
		spans = l.PieceSpans(spans[:0], i)
		for _, sp := range spans {
			if !l.Files[sp.File].Pad && !ok(sp.File) {
				return false
			}
		}
		return true
	}
	if mode == None {
		for i := range n {
			if allFiles(i, func(file int) bool { return stamps[file].Size >= l.Files[file].Length }) {
				have.Set(i)
			}
		}
		progress(Progress{Done: l.Total, Total: l.Total})
		return have, nil
	}
	// Fast.
	recHave, usable := usableRecord(rec, n, len(l.Files))
	if !usable || rec.Clean && !slices.Equal(rec.Files, stamps) {
		return have, hash(ctx, t, f, &have, nil, workers, progress)
	}
	if rec.Clean {
		progress(Progress{})
		return recHave, nil
	}
	// Not clean: trust held pieces of unchanged files, hash the rest.
	var want []bool
	for i := range n {
		if recHave.Has(i) && allFiles(i, func(file int) bool { return rec.Files[file] == stamps[file] }) {
			have.Set(i)
			continue
		}
		if want == nil {
			want = make([]bool, n)
		}
		want[i] = true
	}
	if want == nil {
		progress(Progress{})
		return have, nil
	}
	return have, hash(ctx, t, f, &have, want, workers, progress)
}

// usableRecord returns rec's bitfield if rec fits a torrent of n pieces and files files.
func usableRecord(rec *Record, n, files int) (wire.Bitfield, bool) {
	if rec == nil || len(rec.Files) != files {
		return wire.Bitfield{}, false
	}
	bf, err := wire.ParseBitfield(rec.Have, n)
	return bf, err == nil
}

// hash hashes the pieces want selects (nil: all) and adds the good ones to have, reporting
// progress from a goroutine it stops before returning.
func hash(ctx context.Context, t *metafile.Torrent, f *storage.Files, have *wire.Bitfield, want []bool,
	workers int, progress func(Progress)) error {
	l := t.Layout
	total := l.Total
	o := metafile.CheckOptions{Workers: workers, Done: new(atomic.Int64)}
	if want != nil {
		total = 0
		for i, w := range want {
			if w {
				total += l.PieceSize(i)
			}
		}
		o.Want = func(i int) bool { return want[i] }
	}
	progress(Progress{Total: total})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				progress(Progress{Done: o.Done.Load(), Total: total})
			}
		}
	}()
	good, err := t.CheckPieces(ctx, f, o)
	close(stop)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("check %s: %w", t.Name, err)
	}
	progress(Progress{Done: total, Total: total})
	for i, ok := range good {
		if ok {
			have.Set(i)
		}
	}
	return nil
}
