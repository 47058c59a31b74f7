package metafile

import (
	"errors"
	"fmt"
)

// Default limits on one torrent read from a stranger (see Limits).
const (
	// DefaultMaxSize is the largest .torrent read by default: 32 MiB. libtorrent refuses
	// more than 10 MB by default and qBittorrent raised its own cap to 100 MB for the rare
	// torrent of hundreds of thousands of pieces; 32 MiB holds 1.6M v1 piece hashes.
	DefaultMaxSize = 32 << 20
	// DefaultMaxFiles is the most files (pad files included) a torrent may list by default.
	// Reading one costs about 500 bytes a file (the 1M-file torrent of issue 12 cost
	// 490 MB to show), so 100,000 files stay near 50 MB.
	DefaultMaxFiles = 100_000
	// DefaultMaxPieces is the most pieces a torrent may have by default: libtorrent's
	// default too (0x200000), 32 TiB in 16 MiB pieces.
	DefaultMaxPieces = 1 << 21
	// MinLoadPieceLength is the smallest piece length accepted: one 16 KiB block, what every
	// client requests (BEP 52 asks for at least 16 KiB too). A smaller piece length only
	// multiplies the hashes and the per-piece work ("piece length 1").
	MinLoadPieceLength = BlockSize
)

// ErrLimit is wrapped by errors about a torrent over one of the reader's Limits: it may be
// a valid torrent, too large for this reader's settings.
var ErrLimit = errors.New("over a limit")

// Limits bound the work of reading one torrent: everything read is checked against them
// before anything is allocated from it. The zero value of a field means its default.
type Limits struct {
	// MaxSize bounds the .torrent file (or fetched metadata plus its wrapper) in bytes
	// (default DefaultMaxSize).
	MaxSize int64
	// MaxFiles bounds the files listed, pad files included (default DefaultMaxFiles), and
	// with them the bencoded values of the whole torrent (30 a file, plus 1,000), which is
	// what a decoder allocates for.
	MaxFiles int
	// MaxPieces bounds the pieces (default DefaultMaxPieces).
	MaxPieces int
}

// DefaultLimits returns the limits Load and Parse apply.
func DefaultLimits() Limits {
	return Limits{MaxSize: DefaultMaxSize, MaxFiles: DefaultMaxFiles, MaxPieces: DefaultMaxPieces}
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSize <= 0 {
		l.MaxSize = d.MaxSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxPieces <= 0 {
		l.MaxPieces = d.MaxPieces
	}
	return l
}

// valuesPerFile is how many bencoded values a torrent may hold per file it may list
// (Limits.MaxFiles): a file entry is 5 values plus one per path component, so 30 leave room
// for deep paths, BEP 47 attributes and the rest of the torrent. At the default 100,000
// files that is 3,000,000 values, libtorrent's default token limit. Without such a bound, a
// 20 MB torrent of 10M empty web seeds cost 1.25 GB to show.
const valuesPerFile = 30

// maxValues bounds the bencoded values of one torrent (see valuesPerFile).
func (l Limits) maxValues() int { return valuesPerFile*l.MaxFiles + 1000 }

// sizeError is the error for data of n bytes over l.MaxSize.
func (l Limits) sizeError(n int64) error {
	return fmt.Errorf("%w: %d bytes, larger than the %d-byte limit on .torrent files", ErrLimit, n, l.MaxSize)
}

// countFiles returns how many files the info dictionary info lists (its "files" list, or the
// leaves of its BEP 52 "file tree"), without decoding them: a hostile torrent's file count
// is refused before its files cost any memory. info is valid bencode (checkBencode). A key
// given twice counts at its largest: a decoder may keep either.
func countFiles(info []byte) int {
	n := 0
	forEachValue(info, "files", func(s int) {
		if info[s] == 'l' {
			k := 0
			for i := s + 1; info[i] != 'e'; i = skipValue(info, i) {
				k++
			}
			n = max(n, k)
		}
	})
	forEachValue(info, "file tree", func(s int) {
		if info[s] == 'd' {
			n = max(n, countLeaves(info, s))
		}
	})
	return n
}

// countLeaves counts the file entries (dictionaries keyed "") in the file tree at data[i].
func countLeaves(data []byte, i int) int {
	n := 0
	for i++; data[i] != 'e'; {
		k, v := i, skipValue(data, i)
		if data[k] == '0' {
			n++ // the key "" holds a file's length and root
		} else if data[v] == 'd' {
			n += countLeaves(data, v)
		}
		i = skipValue(data, v)
	}
	return n
}

// forEachValue calls fn with where each value of key starts in the dictionary at data[0].
func forEachValue(data []byte, key string, fn func(start int)) {
	if len(data) == 0 || data[0] != 'd' {
		return
	}
	for i := 1; data[i] != 'e'; {
		ks, v := stringBounds(data, i)
		if string(data[ks:v]) == key {
			fn(v)
		}
		i = skipValue(data, v)
	}
}

// stringBounds returns the bounds of the contents of the bencoded string at data[i].
func stringBounds(data []byte, i int) (start, end int) {
	n := 0
	for ; data[i] != ':'; i++ {
		n = n*10 + int(data[i]-'0')
	}
	return i + 1, i + 1 + n
}

// skipValue returns the index just past the bencoded value at data[i]. data is valid
// bencode (checkBencode), so every length can be trusted and nesting is bounded.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case 'i':
		for data[i] != 'e' {
			i++
		}
		return i + 1
	case 'l', 'd':
		for i++; data[i] != 'e'; {
			i = skipValue(data, i)
		}
		return i + 1
	}
	_, end := stringBounds(data, i)
	return end
}
