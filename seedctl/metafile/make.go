package metafile

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/atomicfile"
	"github.com/webswarm/webswarm/seedctl/storage"
)

// DefaultCreatedBy is the "created by" value of torrents we make.
const DefaultCreatedBy = "webswarm seedctl"

// Progress is shared between a long operation and whoever displays it: Total is set before
// the work starts, Done grows as payload bytes are hashed.
type Progress struct {
	Total atomic.Int64
	Done  atomic.Int64
}

// MakeOptions describes a torrent to make.
type MakeOptions struct {
	// Paths is the payload: one file (single-file torrent), one directory, or several of
	// either (multi-file; then Name is required).
	Paths []string
	// Name overrides the torrent's name (default: the base name of the single path).
	Name string
	// Trackers are announce URLs by tier (BEP 12): the first URL of the first tier is also
	// the "announce" key.
	Trackers [][]string
	// WebSeeds are BEP 19 "url-list" entries.
	WebSeeds []string
	// PieceLength in bytes; 0 chooses AutoPieceLength.
	PieceLength int64
	Private     bool
	Source      string
	Comment     string
	// CreatedBy defaults to DefaultCreatedBy; "-" leaves the key out.
	CreatedBy string
	// NoDate leaves out "creation date", so that the same input gives the same bytes.
	NoDate bool
	// Now gives the creation date; nil means time.Now.
	Now func() time.Time
	// Exclude holds globs (path.Match syntax) matched against each entry's base name and its
	// slash-separated path inside the torrent.
	Exclude       []string
	IncludeHidden bool
	// Hybrid makes a BEP 52 v1+v2 hybrid torrent (files aligned to pieces with BEP 47 pad
	// files, SHA-256 merkle trees, piece layers).
	Hybrid bool
	// Output is where the torrent will be written; if that file exists inside the payload
	// (a torrent re-made with --force inside the directory it describes) it is left out.
	Output string
	// Workers is the number of hashing goroutines (0 = GOMAXPROCS).
	Workers  int
	Progress *Progress
}

// testHookAfterWalk lets tests change the payload between the walk and the hashing.
var testHookAfterWalk func(files []inputFile)

// Made is a torrent made by Make.
type Made struct {
	// Torrent is the bencoded .torrent file.
	Torrent     []byte
	InfoHash    [20]byte
	InfoHashV2  [32]byte // zero unless Hybrid
	Name        string
	TotalLength int64 // payload bytes, pad files excluded
	PieceLength int64
	Pieces      int
	Files       int  // payload files, pad files excluded
	Single      bool // a single-file torrent
}

// Make hashes the payload and returns the torrent. It fails if a file cannot be read or
// changes (size or modification time) while it is hashed.
func Make(ctx context.Context, o MakeOptions) (*Made, error) {
	if err := checkURLs(o.Trackers, o.WebSeeds); err != nil {
		return nil, err
	}
	wo := walkOpts{exclude: o.Exclude, includeHidden: o.IncludeHidden}
	if o.Output != "" {
		if st, err := os.Stat(o.Output); err == nil {
			wo.skip = st
		}
	}
	name, single, files, err := collect(o.Paths, o.Name, wo)
	if err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if o.Hybrid {
		sortV2(files)
	} else {
		sortV1(files)
	}
	if testHookAfterWalk != nil {
		testHookAfterWalk(files)
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	if total == 0 {
		return nil, fmt.Errorf("%s: every file is empty: %w", strings.Join(o.Paths, ", "), ErrNoFiles)
	}
	plen := o.PieceLength
	if plen == 0 {
		plen = AutoPieceLength(total)
	} else if plen < MinPieceLength || plen > MaxPieceLength || plen&(plen-1) != 0 {
		return nil, fmt.Errorf("piece length %d: want a power of two from 16 KiB to 16 MiB", plen)
	}

	// The piece stream: files in order; in a multi-file hybrid, a pad file after every file
	// that does not end on a piece boundary, so that each file starts a piece. The last file
	// is padded too, as libtorrent does: the same files then give libtorrent's info-hashes.
	var lfiles []storage.File
	var paths []string
	for _, f := range files {
		lfiles = append(lfiles, storage.File{Path: f.path, Length: f.size})
		paths = append(paths, f.osPath)
		if o.Hybrid && !single && f.size%plen != 0 {
			pad := plen - f.size%plen
			lfiles = append(lfiles, storage.File{Path: []string{".pad", strconv.FormatInt(pad, 10)}, Length: pad, Pad: true})
			paths = append(paths, "")
		}
	}
	layout, err := storage.NewLayout(lfiles, plen)
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		o.Progress.Total.Store(layout.Total)
	}
	var done *atomic.Int64
	if o.Progress != nil {
		done = &o.Progress.Done
	}
	h, err := hashPieces(ctx, layout, func() fileReader {
		return &osReader{paths: paths, open: func(_ int, p string) (*os.File, error) { return os.Open(p) }}
	}, hashOpts{v1: true, v2: o.Hybrid, workers: o.Workers, done: done})
	if err != nil {
		if errors.Is(err, errShortFile) {
			return nil, fmt.Errorf("hashing: %w (did it change while hashing?)", err)
		}
		return nil, fmt.Errorf("hashing: %w", err)
	}
	for _, f := range files {
		st, err := os.Stat(f.osPath)
		if err != nil {
			return nil, fmt.Errorf("after hashing: %w", err)
		}
		if st.Size() != f.size || !st.ModTime().Equal(f.modTime) {
			return nil, fmt.Errorf("%s changed while it was being hashed (size %d, now %d): the torrent would not match it", f.osPath, f.size, st.Size())
		}
	}

	infoBytes, pieceLayers, err := encodeInfo(o, name, single, total, layout, h)
	if err != nil {
		return nil, err
	}
	torrent, err := encodeTorrent(o, infoBytes, pieceLayers)
	if err != nil {
		return nil, err
	}
	m := &Made{
		Torrent:     torrent,
		InfoHash:    sha1.Sum(infoBytes),
		Name:        name,
		TotalLength: total,
		PieceLength: plen,
		Pieces:      layout.NumPieces(),
		Files:       len(files),
		Single:      single,
	}
	if o.Hybrid {
		m.InfoHashV2 = sha256.Sum256(infoBytes)
	}
	return m, nil
}

// encodeInfo builds the bencoded info dictionary (BEP 3; BEP 52's file tree for a hybrid) and
// the hybrid's piece layers. Keys with empty or zero values are left out, never written empty.
func encodeInfo(o MakeOptions, name string, single bool, total int64, layout *storage.Layout, h *hashed) ([]byte, map[string]any, error) {
	plen := layout.PieceLength
	info := map[string]any{
		"name":         name,
		"piece length": plen,
		"pieces":       string(h.v1),
	}
	if o.Private {
		info["private"] = 1
	}
	if o.Source != "" {
		info["source"] = o.Source
	}
	var pieceLayers map[string]any
	if single {
		info["length"] = total
	} else {
		var list []any
		for _, f := range layout.Files {
			e := map[string]any{"length": f.Length, "path": f.Path}
			if f.Pad {
				e["attr"] = "p"
			}
			list = append(list, e)
		}
		info["files"] = list
	}
	if o.Hybrid {
		info["meta version"] = 2
		tree := map[string]any{}
		pieceLayers = map[string]any{}
		for fi, f := range layout.Files {
			if f.Pad {
				continue
			}
			leaf := map[string]any{"length": f.Length}
			if f.Length > 0 {
				first, end := layout.FilePieces(fi)
				var root [32]byte
				if f.Length > plen {
					layer := h.v2[first:end]
					root = fileRoot(layer, plen)
					var b strings.Builder
					for _, x := range layer {
						b.Write(x[:])
					}
					pieceLayers[string(root[:])] = b.String()
				} else {
					root = h.v2[first]
				}
				leaf["pieces root"] = string(root[:])
			}
			p := f.Path
			if single {
				p = []string{name}
			}
			insertTree(tree, p, map[string]any{"": leaf})
		}
		info["file tree"] = tree
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding info: %w", err)
	}
	return infoBytes, pieceLayers, nil
}

// encodeTorrent wraps the info dictionary with the announce list, web seeds and metadata.
func encodeTorrent(o MakeOptions, infoBytes []byte, pieceLayers map[string]any) ([]byte, error) {
	top := map[string]any{"info": bencode.Bytes(infoBytes)}
	var tiers []any
	ntr := 0
	for _, tier := range o.Trackers {
		if len(tier) > 0 {
			tiers = append(tiers, tier)
			ntr += len(tier)
		}
	}
	if ntr > 0 {
		for _, t := range o.Trackers {
			if len(t) > 0 {
				top["announce"] = t[0]
				break
			}
		}
	}
	if ntr > 1 {
		top["announce-list"] = tiers
	}
	if len(o.WebSeeds) > 0 {
		top["url-list"] = o.WebSeeds
	}
	if o.Comment != "" {
		top["comment"] = o.Comment
	}
	switch o.CreatedBy {
	case "":
		top["created by"] = DefaultCreatedBy
	case "-":
	default:
		top["created by"] = o.CreatedBy
	}
	if !o.NoDate {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		top["creation date"] = now().Unix()
	}
	if len(pieceLayers) > 0 {
		top["piece layers"] = pieceLayers
	}
	torrent, err := bencode.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("encoding torrent: %w", err)
	}
	return torrent, nil
}

// insertTree places leaf at path p in a BEP 52 file tree built of nested maps.
func insertTree(tree map[string]any, p []string, leaf map[string]any) {
	for _, c := range p[:len(p)-1] {
		sub, ok := tree[c].(map[string]any)
		if !ok {
			sub = map[string]any{}
			tree[c] = sub
		}
		tree = sub
	}
	tree[p[len(p)-1]] = leaf
}

// checkName refuses torrent names that clients would reject or that would be a path.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("torrent name %q: want a plain file name", name)
	}
	return nil
}

// checkURLs accepts http(s), udp and ws(s) (WebTorrent, for browsers) trackers and http(s)
// web seeds.
func checkURLs(trackers [][]string, webSeeds []string) error {
	for _, tier := range trackers {
		for _, t := range tier {
			u, err := url.Parse(t)
			if err != nil || u.Host == "" || !trackerScheme(u.Scheme) {
				return fmt.Errorf("tracker %q: want an http://, https://, udp://, ws:// or wss:// URL", t)
			}
		}
	}
	for _, w := range webSeeds {
		u, err := url.Parse(w)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("web seed %q: want an http:// or https:// URL", w)
		}
	}
	return nil
}

// trackerScheme reports whether a torrent may list a tracker URL of scheme s.
func trackerScheme(s string) bool {
	switch s {
	case "http", "https", "udp", "ws", "wss":
		return true
	}
	return false
}

// WriteFile writes data to path atomically (internal/atomicfile: a temporary file in the same
// directory, synced, renamed over path, the directory synced), mode 0644: a .torrent is for
// the web server to serve. Without force an existing path is an error, also one that appears
// while the file is written. Nothing is left behind on failure.
func WriteFile(path string, data []byte, force bool) error {
	exists := fmt.Errorf("%s exists (use --force to overwrite)", path)
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return exists
		}
	}
	err := atomicfile.WriteFile(path, data, atomicfile.Options{Mode: 0o644, NoReplace: !force})
	switch {
	case !force && errors.Is(err, fs.ErrExist):
		return exists
	case err != nil:
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
