package metafile

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/webswarm/webswarm/seedctl/storage"
)

// MaxLoadPieceLength is the largest piece length accepted (verify reads pieces in bounded
// chunks, but a larger value is not a real torrent).
const MaxLoadPieceLength = 1 << 30

// Torrent is a parsed, validated .torrent file.
type Torrent struct {
	// InfoBytes is the bencoded info dictionary exactly as stored.
	InfoBytes []byte
	// InfoHash is the SHA-1 of InfoBytes (the v1 info-hash; for a v2-only torrent it is not
	// used on the wire, but still computed).
	InfoHash [20]byte
	// InfoHashV2 is the SHA-256 of InfoBytes; meaningful when HasV2.
	InfoHashV2   [32]byte
	HasV1, HasV2 bool

	Name        string
	PieceLength int64
	// Pieces is the concatenated SHA-1 piece hashes (v1).
	Pieces []byte
	// Single is true for a single-file torrent (the payload is a file named Name).
	Single bool
	// Layout places the files (pad files included: explicit BEP 47 ones, and for a v2-only
	// torrent the implicit alignment between files) on the pieces.
	Layout *storage.Layout
	// Roots holds each non-empty file's BEP 52 pieces root, by Layout file index (v2 only).
	Roots map[int][32]byte
	// PieceLayers holds, by pieces root, the piece-layer hashes of files longer than a piece.
	PieceLayers map[[32]byte][]byte

	Private      bool
	Source       string
	Trackers     [][]string
	WebSeeds     []string
	Comment      string
	CreatedBy    string
	CreationDate int64
}

type rawFile struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
	Attr   string   `bencode:"attr,omitempty"`
}

type rawInfo struct {
	Name        string         `bencode:"name"`
	PieceLength int64          `bencode:"piece length"`
	Pieces      []byte         `bencode:"pieces,omitempty"`
	Length      *int64         `bencode:"length,omitempty"`
	Files       *[]rawFile     `bencode:"files,omitempty"`
	Private     int64          `bencode:"private,omitempty,ignore_unmarshal_type_error"`
	Source      string         `bencode:"source,omitempty,ignore_unmarshal_type_error"`
	MetaVersion int64          `bencode:"meta version,omitempty"`
	FileTree    *bencode.Bytes `bencode:"file tree,omitempty"`
}

// Load reads and parses the .torrent file at path with the default limits (see
// Limits.Load).
func Load(path string) (*Torrent, error) { return DefaultLimits().Load(path) }

// Load reads and parses the .torrent file at path (see Limits.Parse). Only a regular file is
// read (a FIFO, device or directory is refused without blocking, as is a symbolic link to
// one), and only up to l.MaxSize bytes.
func (l Limits) Load(path string) (*Torrent, error) {
	l = l.WithDefaults()
	data, _, err := storage.ReadFile(path, l.MaxSize)
	if errors.Is(err, storage.ErrTooLarge) {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrLimit, err)
	}
	if err != nil {
		return nil, err
	}
	t, err := l.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ErrUnsafe is wrapped by errors about a torrent whose file names could reach outside the
// directory it is saved in.
var ErrUnsafe = errors.New("unsafe file name")

// Parse parses a .torrent file from untrusted bytes with the default limits (see
// Limits.Parse).
func Parse(data []byte) (*Torrent, error) { return DefaultLimits().Parse(data) }

// Parse parses a .torrent file from untrusted bytes. It refuses malformed bencode, file paths
// that are absolute or hold "..", ".", empty components, "/" or NUL, two files at one path
// (or a file where another file's directory is), piece counts that do not match the total
// length, piece lengths under MinLoadPieceLength, and a hybrid whose v1 and v2 file lists
// differ. A torrent over l (size, files, pieces) is refused with ErrLimit, its file count
// before its file list is decoded.
func (l Limits) Parse(data []byte) (*Torrent, error) {
	l = l.WithDefaults()
	if int64(len(data)) > l.MaxSize {
		return nil, l.sizeError(int64(len(data)))
	}
	if len(data) == 0 || data[0] != 'd' {
		return nil, fmt.Errorf("%w: not a bencoded dictionary", ErrMalformed)
	}
	values, err := checkBencode(data)
	if err != nil {
		return nil, err
	}
	nfiles := 0
	forEachValue(data, "info", func(s int) {
		if data[s] == 'd' {
			nfiles = max(nfiles, countFiles(data[s:skipValue(data, s)]))
		}
	})
	if nfiles > l.MaxFiles {
		return nil, fmt.Errorf("%w: %d files, more than the limit of %d", ErrLimit, nfiles, l.MaxFiles)
	}
	if limit := l.maxValues(); values > limit {
		return nil, fmt.Errorf("%w: %d bencoded values, more than the limit of %d (%d a file the torrent may list)", ErrLimit, values, limit, valuesPerFile)
	}
	var mi metainfo.MetaInfo
	if err := bencode.Unmarshal(data, &mi); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(mi.InfoBytes) == 0 {
		return nil, fmt.Errorf("%w: no info dictionary", ErrMalformed)
	}
	var ri rawInfo
	if err := bencode.Unmarshal(mi.InfoBytes, &ri); err != nil {
		return nil, fmt.Errorf("%w: info dictionary: %v", ErrMalformed, err)
	}
	t := &Torrent{
		InfoBytes:    mi.InfoBytes,
		InfoHash:     sha1.Sum(mi.InfoBytes),
		InfoHashV2:   sha256.Sum256(mi.InfoBytes),
		Name:         ri.Name,
		PieceLength:  ri.PieceLength,
		Private:      ri.Private == 1,
		Source:       ri.Source,
		Comment:      mi.Comment,
		CreatedBy:    mi.CreatedBy,
		CreationDate: mi.CreationDate,
		WebSeeds:     mi.UrlList,
	}
	for _, tier := range mi.UpvertedAnnounceList() {
		var clean []string
		for _, u := range tier {
			if u != "" {
				clean = append(clean, u)
			}
		}
		if len(clean) > 0 {
			t.Trackers = append(t.Trackers, clean)
		}
	}
	if err := checkComponent(ri.Name); err != nil {
		return nil, fmt.Errorf("torrent name: %w", err)
	}
	if ri.PieceLength < MinLoadPieceLength || ri.PieceLength > MaxLoadPieceLength {
		return nil, fmt.Errorf("%w: piece length %d (want %d KiB to %d MiB)", ErrMalformed, ri.PieceLength, MinLoadPieceLength>>10, MaxLoadPieceLength>>20)
	}
	t.HasV1 = ri.Pieces != nil
	t.HasV2 = ri.MetaVersion == 2 && ri.FileTree != nil
	if ri.MetaVersion != 0 && ri.MetaVersion != 1 && ri.MetaVersion != 2 {
		return nil, fmt.Errorf("%w: unknown meta version %d", ErrMalformed, ri.MetaVersion)
	}
	if !t.HasV1 && !t.HasV2 {
		return nil, fmt.Errorf("%w: no piece hashes (neither v1 pieces nor a v2 file tree)", ErrMalformed)
	}

	var v2files []v2File
	if t.HasV2 {
		if ri.PieceLength < BlockSize || ri.PieceLength&(ri.PieceLength-1) != 0 {
			return nil, fmt.Errorf("%w: v2 piece length %d is not a power of two of at least 16 KiB", ErrMalformed, ri.PieceLength)
		}
		var err error
		v2files, err = parseFileTree(*ri.FileTree)
		if err != nil {
			return nil, err
		}
		if len(v2files) == 0 {
			return nil, fmt.Errorf("%w: empty file tree", ErrMalformed)
		}
	}

	var files []storage.File
	switch {
	case t.HasV1:
		if ri.Length != nil && ri.Files != nil {
			return nil, fmt.Errorf("%w: both length and files", ErrMalformed)
		}
		if ri.Length != nil {
			t.Single = true
			files = []storage.File{{Path: []string{ri.Name}, Length: *ri.Length}}
		} else if ri.Files != nil {
			if len(*ri.Files) == 0 {
				return nil, fmt.Errorf("%w: empty file list", ErrMalformed)
			}
			for i, f := range *ri.Files {
				if len(f.Path) == 0 {
					return nil, fmt.Errorf("%w: file %d has an empty path", ErrUnsafe, i)
				}
				for _, c := range f.Path {
					if err := checkComponent(c); err != nil {
						return nil, fmt.Errorf("file %d %q: %w", i, strings.Join(f.Path, "/"), err)
					}
				}
				files = append(files, storage.File{Path: f.Path, Length: f.Length, Pad: strings.Contains(f.Attr, "p")})
			}
		} else {
			return nil, fmt.Errorf("%w: neither length nor files", ErrMalformed)
		}
	default:
		// v2 only: each file starts a piece; the gaps are implicit padding.
		t.Single = len(v2files) == 1 && len(v2files[0].path) == 1 && v2files[0].path[0] == ri.Name
		for i, f := range v2files {
			p := f.path
			if t.Single {
				p = []string{ri.Name}
			}
			files = append(files, storage.File{Path: p, Length: f.length})
			if r := f.length % ri.PieceLength; r != 0 && i < len(v2files)-1 {
				files = append(files, storage.File{Path: []string{".pad", fmt.Sprint(ri.PieceLength - r)}, Length: ri.PieceLength - r, Pad: true})
			}
		}
	}
	layout, err := storage.NewLayout(files, ri.PieceLength)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	t.Layout = layout
	if layout.Total == 0 {
		return nil, fmt.Errorf("%w: total length is zero", ErrMalformed)
	}
	if err := checkCollisions(layout.Files); err != nil {
		return nil, err
	}
	if t.HasV1 {
		if len(ri.Pieces)%20 != 0 {
			return nil, fmt.Errorf("%w: pieces is %d bytes, not a multiple of 20", ErrMalformed, len(ri.Pieces))
		}
		if got, want := len(ri.Pieces)/20, layout.NumPieces(); got != want {
			return nil, fmt.Errorf("%w: %d piece hashes for %d bytes in %d-byte pieces (want %d)", ErrMalformed, got, layout.Total, ri.PieceLength, want)
		}
		t.Pieces = ri.Pieces
	}
	if n := layout.NumPieces(); n > l.MaxPieces {
		return nil, fmt.Errorf("%w: %d pieces, more than the limit of %d", ErrLimit, n, l.MaxPieces)
	}
	if t.HasV2 {
		if err := t.attachV2(v2files, mi.PieceLayers); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkComponent accepts one path component that is safe to join under a directory.
func checkComponent(c string) error {
	switch {
	case c == "":
		return fmt.Errorf("%w: empty path component", ErrUnsafe)
	case c == "." || c == "..":
		return fmt.Errorf("%w: path component %q", ErrUnsafe, c)
	case strings.ContainsRune(c, '/'):
		return fmt.Errorf("%w: path component %q holds '/'", ErrUnsafe, c)
	case strings.ContainsRune(c, 0):
		return fmt.Errorf("%w: path component %q holds NUL", ErrUnsafe, c)
	}
	return nil
}

// checkCollisions refuses two files at one path, and a file where another file's directory
// is ("a" and "a/b"): either makes two files write to one place. Pad files (BEP 47: many
// share a path such as .pad/16384) hold no data and are left out.
func checkCollisions(files []storage.File) error {
	// Joined with NUL (never in a component), a directory's entries sort right after it.
	paths := make([]string, 0, len(files))
	for _, f := range files {
		if !f.Pad {
			paths = append(paths, strings.Join(f.Path, "\x00"))
		}
	}
	slices.Sort(paths)
	for i := 1; i < len(paths); i++ {
		prev, p := paths[i-1], paths[i]
		if p == prev || strings.HasPrefix(p, prev+"\x00") {
			return fmt.Errorf("%w: files %q and %q collide", ErrUnsafe, strings.ReplaceAll(prev, "\x00", "/"), strings.ReplaceAll(p, "\x00", "/"))
		}
	}
	return nil
}

type v2File struct {
	path   []string
	length int64
	root   []byte // nil for an empty file
}

// parseFileTree flattens a BEP 52 file tree in its canonical (sorted key) order.
func parseFileTree(raw []byte) ([]v2File, error) {
	var out []v2File
	var walk func(raw []byte, path []string) error
	walk = func(raw []byte, path []string) error {
		var dir map[string]bencode.Bytes
		if err := bencode.Unmarshal(raw, &dir); err != nil {
			return fmt.Errorf("%w: file tree: %v", ErrMalformed, err)
		}
		if leaf, ok := dir[""]; ok {
			if len(dir) != 1 || len(path) == 0 {
				return fmt.Errorf("%w: file tree entry %q is both a file and a directory", ErrMalformed, strings.Join(path, "/"))
			}
			var f struct {
				Length int64  `bencode:"length"`
				Root   []byte `bencode:"pieces root,omitempty"`
			}
			if err := bencode.Unmarshal(leaf, &f); err != nil {
				return fmt.Errorf("%w: file tree entry %q: %v", ErrMalformed, strings.Join(path, "/"), err)
			}
			if f.Length < 0 || f.Length > storage.MaxTotal {
				return fmt.Errorf("%w: file %q has length %d", ErrMalformed, strings.Join(path, "/"), f.Length)
			}
			if f.Length > 0 && len(f.Root) != 32 {
				return fmt.Errorf("%w: file %q: pieces root is %d bytes, want 32", ErrMalformed, strings.Join(path, "/"), len(f.Root))
			}
			out = append(out, v2File{path: slices.Clone(path), length: f.Length, root: f.Root})
			return nil
		}
		if len(dir) == 0 {
			return fmt.Errorf("%w: empty directory %q in file tree", ErrMalformed, strings.Join(path, "/"))
		}
		keys := make([]string, 0, len(dir))
		for k := range dir {
			if err := checkComponent(k); err != nil {
				return fmt.Errorf("file tree %q: %w", strings.Join(append(path, k), "/"), err)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := walk(dir[k], append(path, k)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(raw, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// attachV2 checks the v2 file list against the layout and records roots and piece layers.
func (t *Torrent) attachV2(v2files []v2File, layers map[string]string) error {
	t.Roots = map[int][32]byte{}
	t.PieceLayers = map[[32]byte][]byte{}
	k := 0
	for fi, f := range t.Layout.Files {
		if f.Pad {
			continue
		}
		if k >= len(v2files) {
			return fmt.Errorf("%w: hybrid torrent's v1 file list has more files than its v2 file tree", ErrMalformed)
		}
		v := v2files[k]
		k++
		same := f.Length == v.length && (slices.Equal(f.Path, v.path) || (t.Single && len(v.path) == 1 && v.path[0] == t.Name))
		if !same {
			return fmt.Errorf("%w: hybrid torrent's v1 and v2 file lists differ at %q", ErrMalformed, strings.Join(v.path, "/"))
		}
		if f.Length == 0 {
			continue
		}
		if f.Offset%t.PieceLength != 0 {
			return fmt.Errorf("%w: file %q does not start on a piece boundary", ErrMalformed, strings.Join(v.path, "/"))
		}
		var root [32]byte
		copy(root[:], v.root)
		t.Roots[fi] = root
		if f.Length > t.PieceLength {
			layer, ok := layers[string(v.root)]
			first, end := t.Layout.FilePieces(fi)
			if !ok || len(layer) != 32*(end-first) {
				return fmt.Errorf("%w: file %q: piece layer missing or of the wrong size", ErrMalformed, strings.Join(v.path, "/"))
			}
			hs := make([][32]byte, end-first)
			for i := range hs {
				copy(hs[i][:], layer[32*i:])
			}
			if got := fileRoot(hs, t.PieceLength); got != root {
				return fmt.Errorf("%w: file %q: piece layer does not hash to its pieces root", ErrMalformed, strings.Join(v.path, "/"))
			}
			t.PieceLayers[root] = []byte(layer)
		}
	}
	if k != len(v2files) {
		return fmt.Errorf("%w: hybrid torrent's v2 file tree has more files than its v1 file list", ErrMalformed)
	}
	return nil
}

// expectedV2 returns the v2 hash piece i must have, and whether there is one (pieces holding
// only pad bytes have none).
func (t *Torrent) expectedV2(i int, spans []storage.Span) ([32]byte, bool) {
	for _, sp := range spans {
		f := t.Layout.Files[sp.File]
		if f.Pad {
			continue
		}
		root := t.Roots[sp.File]
		if f.Length <= t.PieceLength {
			return root, true
		}
		first, _ := t.Layout.FilePieces(sp.File)
		var h [32]byte
		copy(h[:], t.PieceLayers[root][32*(i-first):])
		return h, true
	}
	return [32]byte{}, false
}
