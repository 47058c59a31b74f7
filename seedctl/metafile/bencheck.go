package metafile

import (
	"errors"
	"fmt"
)

// MaxDepth bounds the nesting of lists and dictionaries in a torrent we read (libtorrent uses
// the same limit): deeper input is hostile and could exhaust the stack of a recursive decoder.
const MaxDepth = 100

// ErrMalformed is wrapped by every error about a torrent that is not valid bencode.
var ErrMalformed = errors.New("not a valid torrent file")

// checkBencode walks data as exactly one bencoded value without allocating, and fails on
// anything malformed: bad integers, string lengths past the end of data, nesting deeper than
// MaxDepth, trailing bytes. After it, a decoder can trust every length prefix. It returns how
// many values (strings, integers, lists and dictionaries, at every depth) data holds: what a
// decoder allocates for.
func checkBencode(data []byte) (values int, err error) {
	depth := 0
	i := 0
	// containers holds, per open container, whether it is a dictionary and whether the next
	// item is a key; a fixed array is enough since depth is bounded.
	var isDict [MaxDepth + 1]bool
	var wantKey [MaxDepth + 1]bool
	for {
		if i >= len(data) {
			return 0, fmt.Errorf("%w: truncated at byte %d", ErrMalformed, i)
		}
		c := data[i]
		values++
		if depth > 0 && isDict[depth] && wantKey[depth] && c != 'e' && (c < '0' || c > '9') {
			return 0, fmt.Errorf("%w: dictionary key at byte %d is not a string", ErrMalformed, i)
		}
		switch {
		case c == 'i':
			j := i + 1
			if j < len(data) && data[j] == '-' {
				j++
			}
			start := j
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			if j == start || j >= len(data) || data[j] != 'e' || j-start > 19 {
				return 0, fmt.Errorf("%w: bad integer at byte %d", ErrMalformed, i)
			}
			i = j + 1
		case c >= '0' && c <= '9':
			j := i
			var n int64
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				n = n*10 + int64(data[j]-'0')
				if n > int64(len(data)) {
					return 0, fmt.Errorf("%w: string at byte %d runs past the end", ErrMalformed, i)
				}
				j++
			}
			if j >= len(data) || data[j] != ':' {
				return 0, fmt.Errorf("%w: bad string length at byte %d", ErrMalformed, i)
			}
			if n > int64(len(data)-j-1) {
				return 0, fmt.Errorf("%w: string at byte %d runs past the end", ErrMalformed, i)
			}
			i = j + 1 + int(n)
		case c == 'l' || c == 'd':
			if depth == MaxDepth {
				return 0, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
			}
			depth++
			isDict[depth] = c == 'd'
			wantKey[depth] = true
			i++
			continue
		case c == 'e' && depth > 0:
			values-- // an end, not a value
			if isDict[depth] && !wantKey[depth] {
				return 0, fmt.Errorf("%w: dictionary key without a value at byte %d", ErrMalformed, i)
			}
			depth--
			i++
		default:
			return 0, fmt.Errorf("%w: unexpected byte %q at %d", ErrMalformed, c, i)
		}
		if depth == 0 {
			if i != len(data) {
				return 0, fmt.Errorf("%w: %d bytes of garbage after the end", ErrMalformed, len(data)-i)
			}
			return values, nil
		}
		if isDict[depth] {
			wantKey[depth] = !wantKey[depth]
		}
	}
}
