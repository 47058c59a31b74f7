package dfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// The state file is read as a stream: a million peers must not cost a decoded copy of the
// whole file (with a generic decoder, 670 MB of heap and 7 s at start-up). The reader below
// knows bencode (BEP 3) and the file's layout, and hands the store one torrent at a time.
//
// A file is read in two passes. The first only checks it: the layout, every value's type,
// lengths against the file's size. Only a file that passes is read again and restored, so a
// file found corrupt half-way leaves the store empty, as a whole-file decode did.

const (
	// maxKept is the longest string the reader keeps: dictionary keys, info-hashes, peer IDs
	// and addresses are far shorter. A longer string is read past without being stored (a
	// long key is an unknown key, a long info-hash or address a malformed entry).
	maxKept = 256
	// maxDepth bounds the nesting of values the file's layout does not know (bttrack's
	// "allowed" holds a few levels): deeper is not a state file.
	maxDepth = 64
	// maxIntLen is the longest integer text: int64's 19 digits and a sign.
	maxIntLen = 20
)

// reader reads bencoded values from a buffered stream.
type reader struct {
	r    *bufio.Reader
	off  int64 // bytes consumed
	size int64 // the whole input's size: no string may claim more than is left of it
	buf  [maxKept]byte
}

func (r *reader) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{r.off}, args...)...)
}

func (r *reader) peek() (byte, error) {
	b, err := r.r.Peek(1)
	if err != nil {
		if err == io.EOF {
			return 0, r.errorf("%w", io.ErrUnexpectedEOF)
		}
		return 0, err
	}
	return b[0], nil
}

func (r *reader) next() (byte, error) {
	c, err := r.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, r.errorf("%w", io.ErrUnexpectedEOF)
		}
		return 0, err
	}
	r.off++
	return c, nil
}

// open consumes the start of a dictionary; what names the value in the error.
func (r *reader) open(what string) error {
	c, err := r.peek()
	if err != nil {
		return err
	}
	if c != 'd' {
		return r.errorf("%s: want a dictionary, found %q", what, c)
	}
	r.next()
	return nil
}

// more reports whether the open list or dictionary has another item, consuming its end if not.
func (r *reader) more() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if c == 'e' {
		r.next()
		return false, nil
	}
	return true, nil
}

// int reads an integer value; what names it in the error.
func (r *reader) int(what string) (int64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if c != 'i' {
		return 0, r.errorf("%s: want an integer, found %q", what, c)
	}
	if b, _ := r.r.Peek(maxIntLen + 2); len(b) > 2 {
		// Fast path, in bufio's buffer: "i", up to 18 digits with no leading zero, "e".
		if v, n, ok := parseDigits(b[1:], 'e', true); ok {
			r.r.Discard(n + 2)
			r.off += int64(n + 2)
			return v, nil
		}
	}
	// Slow path: byte by byte, for anything unusual and to say what is wrong.
	r.next()
	var digits [maxIntLen]byte
	n := 0
	for {
		c, err := r.next()
		if err != nil {
			return 0, err
		}
		if c == 'e' {
			break
		}
		if n == len(digits) || !(c >= '0' && c <= '9' || c == '-' && n == 0) {
			return 0, r.errorf("%s: bad integer", what)
		}
		digits[n] = c
		n++
	}
	// BEP 3: no leading zeros, no negative zero.
	d := digits[:n]
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) > 1 && d[0] == '0' || len(d) == 1 && d[0] == '0' && n == 2 {
		return 0, r.errorf("%s: integer with a leading zero", what)
	}
	v, err := strconv.ParseInt(string(digits[:n]), 10, 64)
	if err != nil {
		return 0, r.errorf("%s: %w", what, err)
	}
	return v, nil
}

// str reads a string value. It returns the bytes in r.buf (valid until the next read) and
// kept=true, or, for a string longer than maxKept, reads past it and returns kept=false.
func (r *reader) str(what string) (b []byte, kept bool, err error) {
	c, err := r.peek()
	if err != nil {
		return nil, false, err
	}
	if c < '0' || c > '9' {
		return nil, false, r.errorf("%s: want a string, found %q", what, c)
	}
	n := int64(-1)
	if b, _ := r.r.Peek(20); len(b) > 1 {
		// Fast path, in bufio's buffer, as for integers.
		if v, d, ok := parseDigits(b, ':', false); ok {
			r.r.Discard(d + 1)
			r.off += int64(d + 1)
			n = v
		}
	}
	if n < 0 { // slow path
		n = 0
		for digits := 0; ; digits++ {
			c, err := r.next()
			if err != nil {
				return nil, false, err
			}
			if c == ':' {
				break
			}
			if c < '0' || c > '9' || digits == 18 || digits == 1 && n == 0 {
				// Not a digit, too long, or a leading zero (which BEP 3 forbids).
				return nil, false, r.errorf("%s: bad string length", what)
			}
			n = n*10 + int64(c-'0')
		}
	}
	// Refused before reading: a length the file cannot hold is corruption, not a reason to
	// allocate or to read on.
	if n > r.size-r.off {
		return nil, false, r.errorf("%s: string of %d bytes, longer than the rest of the file", what, n)
	}
	if n > maxKept {
		d, err := r.r.Discard(int(n))
		r.off += int64(d)
		if err != nil {
			return nil, false, unexpected(err)
		}
		return nil, false, nil
	}
	d, err := io.ReadFull(r.r, r.buf[:n])
	r.off += int64(d)
	if err != nil {
		return nil, false, unexpected(err)
	}
	return r.buf[:n], true, nil
}

// parseDigits parses the decimal number at the start of b, up to the byte end, for the
// fast paths: at most 18 digits (no overflow), no leading zero, a minus sign if signed (not
// before a zero). n is the length of the text before end. ok is false for anything else,
// which the slow path then reads or reports.
func parseDigits(b []byte, end byte, signed bool) (v int64, n int, ok bool) {
	neg := signed && len(b) > 0 && b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	digits := i - start
	if i == len(b) || b[i] != end || digits == 0 || digits > 18 || digits > 1 && b[start] == '0' || neg && b[start] == '0' {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// skip reads past one value of any type, checking it is well-formed. It keeps its own stack
// instead of recursing, so no file can exhaust the goroutine's stack.
func (r *reader) skip(what string) error {
	// Open containers: 'l' a list, 'k' a dictionary expecting a key or its end, 'v' a
	// dictionary expecting the value of the key just read.
	var stack [maxDepth]byte
	depth := 0
	for {
		c, err := r.peek()
		if err != nil {
			return err
		}
		top := byte(0)
		if depth > 0 {
			top = stack[depth-1]
		}
		switch {
		case c == 'e' && (top == 'l' || top == 'k'):
			r.next()
			depth--
		case c == 'l' || c == 'd':
			if top == 'k' {
				return r.errorf("%s: dictionary key is not a string", what)
			}
			if depth == maxDepth {
				return r.errorf("%s: nested more than %d deep", what, maxDepth)
			}
			r.next()
			stack[depth] = 'l'
			if c == 'd' {
				stack[depth] = 'k'
			}
			depth++
			continue // a container just opened completes no value
		case c == 'i':
			if top == 'k' {
				return r.errorf("%s: dictionary key is not a string", what)
			}
			if _, err := r.int(what); err != nil {
				return err
			}
		case c >= '0' && c <= '9':
			if _, _, err := r.str(what); err != nil {
				return err
			}
		default:
			return r.errorf("%s: unexpected %q", what, c)
		}
		// A value is complete: the whole one, or a key or value in the enclosing dictionary.
		if depth == 0 {
			return nil
		}
		switch stack[depth-1] {
		case 'k':
			stack[depth-1] = 'v'
		case 'v':
			stack[depth-1] = 'k'
		}
	}
}

// atEnd checks nothing follows the top-level value.
func (r *reader) atEnd() error {
	if _, err := r.r.Peek(1); err != io.EOF {
		if err != nil {
			return err
		}
		return r.errorf("data after the end of the state")
	}
	return nil
}

// loader reads a state file's layout from a reader. With a nil store it only checks the
// file; with a store it restores it and counts what it found in stats.
type loader struct {
	rd    *reader
	store swarm.Store
	now   time.Time

	stats    Stats
	firstErr error
	recs     []swarm.PeerRecord
	// completions holds "completed" (which sorts before "peers") until each torrent's peers
	// are read, so both go to the store in one Restore.
	completions map[bittorrent.InfoHash]uint32
	// badCompleted holds malformed info-hashes of "completed", so one also under "peers" is
	// counted once.
	badCompleted map[string]bool
	peersDone    bool
	// ip holds the address text of the peer being read (in the loader, on the heap: see peer).
	ip [64]byte
}

// current reads the file as bttrack 3.4.2 and we write it. known says whether it had a
// "peers" or "completed" key; a file with neither may be in the oldest layout.
func (l *loader) current() (known bool, err error) {
	if err := l.rd.open("state"); err != nil {
		return false, err
	}
	for {
		more, err := l.rd.more()
		if err != nil || !more {
			return known, err
		}
		k, kept, err := l.rd.str("state key")
		if err != nil {
			return known, err
		}
		switch {
		case kept && string(k) == "completed":
			known = true
			err = l.completed()
		case kept && string(k) == "peers":
			known = true
			err = l.peers()
			l.peersDone = true
		default: // bttrack's "allowed", "allowed_dir_files"; anything else
			err = l.rd.skip("state value")
		}
		if err != nil {
			return known, err
		}
	}
}

// oldest reads bttrack's oldest layout: the peers dictionary at the top level.
func (l *loader) oldest() error {
	return l.peers()
}

// completed reads {info_hash: count}.
func (l *loader) completed() error {
	if err := l.rd.open("completed"); err != nil {
		return err
	}
	for {
		more, err := l.rd.more()
		if err != nil || !more {
			return err
		}
		k, kept, err := l.rd.str("completed info_hash")
		if err != nil {
			return err
		}
		var ih bittorrent.InfoHash
		valid := kept && len(k) == len(ih)
		copy(ih[:], k)
		bad := ""
		if kept && !valid && l.store != nil {
			bad = string(k)
		}
		n, err := l.rd.int("completed count")
		if err != nil {
			return err
		}
		switch {
		case l.store == nil:
		case !kept:
			l.stats.Skipped++
		case !valid:
			l.badCompleted[bad] = true
		case l.peersDone:
			// "completed" after "peers" (keys out of order): the torrent's peers are in.
			l.restore(ih, completed(n), nil)
		default:
			l.completions[ih] = completed(n)
		}
	}
}

// peers reads {info_hash: {peer_id: {peer}}}.
func (l *loader) peers() error {
	if err := l.rd.open("peers"); err != nil {
		return err
	}
	for {
		more, err := l.rd.more()
		if err != nil || !more {
			return err
		}
		k, kept, err := l.rd.str("info_hash")
		if err != nil {
			return err
		}
		var ih bittorrent.InfoHash
		valid := kept && len(k) == len(ih)
		copy(ih[:], k)
		if !valid && l.store != nil {
			// The torrent is skipped once, even if "completed" had it too.
			l.stats.Skipped++
			if kept {
				delete(l.badCompleted, string(k))
			}
		}
		if err := l.torrent(ih, valid); err != nil {
			return err
		}
	}
}

// torrent reads one torrent's {peer_id: {peer}} and restores it if valid.
func (l *loader) torrent(ih bittorrent.InfoHash, valid bool) error {
	if err := l.rd.open("torrent"); err != nil {
		return err
	}
	l.recs = l.recs[:0]
	for {
		more, err := l.rd.more()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		k, kept, err := l.rd.str("peer_id")
		if err != nil {
			return err
		}
		var id bittorrent.PeerID
		idOK := kept && len(k) == len(id)
		copy(id[:], k)
		rec, legacy, ok, err := l.peer()
		if err != nil {
			return err
		}
		if !valid || l.store == nil {
			continue
		}
		l.stats.Peers++
		if !idOK || !ok {
			l.stats.Skipped++
			continue
		}
		if legacy {
			l.stats.Legacy++
		}
		rec.ID = id
		l.recs = append(l.recs, rec)
	}
	if valid && l.store != nil {
		d, had := l.completions[ih]
		if had {
			delete(l.completions, ih)
		}
		l.restore(ih, d, l.recs)
	}
	if cap(l.recs) > 1<<16 {
		l.recs = nil // one huge torrent's records are not kept for the rest of the load
	}
	return nil
}

// restore hands one torrent to the store, counting it, and a refusal.
func (l *loader) restore(ih bittorrent.InfoHash, downloaded uint32, peers []swarm.PeerRecord) {
	l.stats.Torrents++
	if err := l.store.Restore(ih, downloaded, peers); err != nil {
		l.stats.Refused++
		if l.firstErr == nil {
			l.firstErr = fmt.Errorf("restore torrent %v: %w", ih, err)
		}
	}
}

// peer reads one peer's dictionary: bttrack's keys and ours (see the package doc). bttrack's
// "key" (the raw key), "given ip" and the "key hash" older versions of ours wrote are not
// read: the store learns keys again (its key hashes are per process), and the address is the
// one handed out. ok is false for an entry to skip: no usable address or port. Only a
// value of the wrong type is an error.
func (l *loader) peer() (rec swarm.PeerRecord, legacy, ok bool, err error) {
	if err := l.rd.open("peer"); err != nil {
		return rec, false, false, err
	}
	var (
		ipLen                   = -1 // absent or too long
		port, left              int64
		counted                 int64
		nat, seen, hidden       int64
		hasNAT, hasSeen, hasHid bool
	)
	for {
		more, err := l.rd.more()
		if err != nil {
			return rec, false, false, err
		}
		if !more {
			break
		}
		k, kept, err := l.rd.str("peer key")
		if err != nil {
			return rec, false, false, err
		}
		if !kept {
			k = nil
		}
		switch string(k) {
		case "ip":
			var b []byte
			if b, kept, err = l.rd.str("ip"); err == nil && kept && len(b) <= len(l.ip) {
				ipLen = copy(l.ip[:], b)
			}
		case "port":
			port, err = l.rd.int("port")
		case "left":
			left, err = l.rd.int("left")
		case "counted":
			counted, err = l.rd.int("counted")
		case "nat":
			nat, err = l.rd.int("nat")
			hasNAT = true
		case "seen":
			seen, err = l.rd.int("seen")
			hasSeen = true
		case "hidden":
			hidden, err = l.rd.int("hidden")
			hasHid = true
		default:
			err = l.rd.skip("peer value")
		}
		if err != nil {
			return rec, false, false, err
		}
	}
	if l.store == nil || ipLen < 0 || port <= 0 || port > math.MaxUint16 || left < 0 {
		return rec, false, false, nil
	}
	if ipLen == 0 || bytes.IndexByte(l.ip[:ipLen], '%') >= 0 {
		return rec, false, false, nil // no address, or one with a zone: not a peer's
	}
	// Parsed in place, without copying the text into a new string for every peer: ParseAddr
	// keeps no reference to its argument once it returns (a zone, which it would keep, is
	// refused above), and the error, which would, is dropped here.
	ip, err := netip.ParseAddr(unsafe.String(&l.ip[0], ipLen))
	if err != nil {
		return rec, false, false, nil
	}
	rec.Addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	rec.Seeder = left == 0
	rec.Counted = counted != 0
	switch {
	case hasHid:
		rec.Hidden = hidden != 0
	case hasNAT:
		rec.Hidden = nat != 0
	}
	if hasSeen {
		rec.LastSeen = time.Unix(seen, 0)
	} else {
		rec.LastSeen = l.now
		legacy = true
	}
	return rec, legacy, true, nil
}

func completed(n int64) uint32 {
	return uint32(min(max(n, 0), math.MaxUint32))
}

// errDecode marks readState's errors that make the file unusable, as opposed to torrents
// the store refused.
var errDecode = errors.New("decode")

// readState reads a state file of size bytes from src into store (see the two passes above).
// An error wrapping errDecode means the file is unusable; any other error reports torrents
// the store refused, with everything else loaded.
func readState(src io.ReadSeeker, size int64, store swarm.Store, now time.Time) (Stats, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	pass := func(l *loader, read func(*loader) error) error {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return err
		}
		br.Reset(src)
		l.rd = &reader{r: br, size: size}
		if err := read(l); err != nil {
			return err
		}
		return l.rd.atEnd()
	}
	// Pass 1: check the file in the current layout.
	var known bool
	err := pass(&loader{}, func(l *loader) (err error) {
		known, err = l.current()
		return err
	})
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %w", errDecode, err)
	}
	read := func(l *loader) error { _, err := l.current(); return err }
	if !known {
		// Neither "peers" nor "completed": bttrack's oldest layout, if the file fits it;
		// otherwise an empty state.
		if pass(&loader{}, (*loader).oldest) != nil {
			return Stats{}, nil
		}
		read = (*loader).oldest
	}
	// Pass 2: restore.
	l := &loader{
		store:        store,
		now:          now,
		completions:  make(map[bittorrent.InfoHash]uint32),
		badCompleted: make(map[string]bool),
	}
	if err := pass(l, read); err != nil {
		// The file changed under us or could not be read again: what was restored stays.
		return l.stats, fmt.Errorf("%w: second pass: %w", errDecode, err)
	}
	// Torrents with completions and no peers.
	for ih, d := range l.completions {
		l.restore(ih, d, nil)
	}
	l.stats.Skipped += len(l.badCompleted)
	if l.firstErr != nil {
		return l.stats, fmt.Errorf("%d torrents not restored, first: %w", l.stats.Refused, l.firstErr)
	}
	return l.stats, nil
}
