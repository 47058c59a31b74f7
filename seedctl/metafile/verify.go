package metafile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/webswarm/webswarm/seedctl/storage"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	Workers  int // hashing goroutines; 0 = GOMAXPROCS
	Progress *Progress
}

// FileProblem is a payload file that is missing or has the wrong size.
type FileProblem struct {
	Path    string `json:"path"`             // as on disk, under the data directory
	Problem string `json:"problem"`          // "missing", "short", "long", "not a regular file", "unreadable"
	Want    int64  `json:"want_bytes"`       // length in the torrent
	Got     int64  `json:"got_bytes"`        // length on disk (0 when missing)
	Detail  string `json:"detail,omitempty"` // the error, when there is one
	Pieces  int    `json:"bad_pieces"`       // bad pieces touching this file
	Content bool   `json:"content_mismatch"` // some piece of it hashed wrong (not just missing bytes)
}

// FileReport is a payload file touched by at least one bad piece.
type FileReport struct {
	Path      string `json:"path"`
	BadPieces int    `json:"bad_pieces"`
}

// Report is what Verify found.
type Report struct {
	OK        bool          `json:"ok"`
	Pieces    int           `json:"pieces"`
	Good      int           `json:"good_pieces"`
	Bad       []int         `json:"bad_pieces"`
	BadRanges string        `json:"bad_piece_ranges,omitempty"`
	Files     []FileReport  `json:"bad_files"`
	Problems  []FileProblem `json:"file_problems"`
	Checked   int64         `json:"checked_bytes"` // payload bytes in good pieces
}

// Verify re-hashes the payload of t found under dataDir (the directory holding the torrent's
// file or top folder, like a client's save path) and reports every bad piece and the files
// it touches, and every missing or wrongly sized file. Only an error that prevents checking
// (not a mismatch) is returned as error.
func Verify(ctx context.Context, t *Torrent, dataDir string, o VerifyOptions) (*Report, error) {
	st, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data directory %s: not a directory (give the directory that holds %s)", dataDir, t.Name)
	}
	l := t.Layout
	paths := make([]string, len(l.Files))
	bad := make([]bool, len(l.Files)) // missing or unopenable: pieces touching it are not read
	rep := &Report{Pieces: l.NumPieces(), Bad: []int{}, Files: []FileReport{}, Problems: []FileProblem{}}
	problem := map[int]int{} // file index -> index in rep.Problems
	for i, f := range l.Files {
		if f.Pad {
			continue
		}
		paths[i] = payloadPath(dataDir, t, f)
		fst, err := os.Stat(paths[i])
		p := FileProblem{Path: paths[i], Want: f.Length}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.Problem = "missing"
		case err != nil:
			p.Problem, p.Detail = "unreadable", err.Error()
		case !fst.Mode().IsRegular():
			p.Problem = "not a regular file"
		case fst.Size() < f.Length:
			p.Problem, p.Got = "short", fst.Size()
		case fst.Size() > f.Length:
			p.Problem, p.Got = "long", fst.Size()
		default:
			continue
		}
		if p.Problem != "short" && p.Problem != "long" {
			bad[i] = true
		}
		problem[i] = len(rep.Problems)
		rep.Problems = append(rep.Problems, p)
	}
	var openErrs sync.Map
	open := func(f int, p string) (*os.File, error) {
		if e, ok := openErrs.Load(f); ok {
			return nil, e.(error)
		}
		file, err := os.Open(p)
		if err != nil {
			openErrs.Store(f, err)
		}
		return file, err
	}
	skip := func(piece int) bool {
		var spans [4]storage.Span
		for _, sp := range l.PieceSpans(spans[:0], piece) {
			if bad[sp.File] {
				return true
			}
		}
		return false
	}
	if o.Progress != nil {
		o.Progress.Total.Store(l.Total)
	}
	opts := hashOpts{v1: t.HasV1, v2: t.HasV2, workers: o.Workers, keepGoing: true, skip: skip}
	if o.Progress != nil {
		opts.done = &o.Progress.Done
	}
	h, err := hashPieces(ctx, l, func() fileReader { return &osReader{paths: paths, open: open} }, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	badPerFile := map[int]int{}
	contentBad := map[int]bool{}
	var spans []storage.Span
	for i := range rep.Pieces {
		ok := h.errs[i] == nil
		spans = l.PieceSpans(spans[:0], i)
		content := false
		if ok && t.HasV1 && !bytes.Equal(h.v1[20*i:20*i+20], t.Pieces[20*i:20*i+20]) {
			ok, content = false, true
		}
		if ok && t.HasV2 {
			if want, has := t.expectedV2(i, spans); has && want != h.v2[i] {
				ok, content = false, true
			}
		}
		if ok {
			rep.Good++
			for _, sp := range spans {
				if !l.Files[sp.File].Pad {
					rep.Checked += sp.Length
				}
			}
			continue
		}
		rep.Bad = append(rep.Bad, i)
		for _, sp := range spans {
			if l.Files[sp.File].Pad {
				continue
			}
			badPerFile[sp.File]++
			if content {
				contentBad[sp.File] = true
			}
		}
	}
	for i := range l.Files {
		if n := badPerFile[i]; n > 0 {
			rep.Files = append(rep.Files, FileReport{Path: paths[i], BadPieces: n})
		}
		if k, ok := problem[i]; ok {
			rep.Problems[k].Pieces = badPerFile[i]
			rep.Problems[k].Content = contentBad[i]
		}
	}
	rep.BadRanges = formatRanges(rep.Bad)
	rep.OK = len(rep.Bad) == 0 && len(rep.Problems) == 0
	return rep, nil
}

// payloadPath is where file f of t lives under dataDir. Parse has checked every component,
// so the result never leaves dataDir.
func payloadPath(dataDir string, t *Torrent, f storage.File) string {
	if t.Single {
		return filepath.Join(dataDir, t.Name)
	}
	return filepath.Join(append([]string{dataDir, t.Name}, f.Path...)...)
}

// formatRanges renders sorted piece indexes as "0-3, 7, 9-10".
func formatRanges(xs []int) string {
	var b strings.Builder
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", xs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", xs[i], xs[j])
		}
		i = j + 1
	}
	return b.String()
}
