package swarm

import (
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// A table holds one address family's peers of one torrent.
//
// Entries live in a dense slab of fixed-stride records, seeders first: [0, nSeed) are seeders,
// [nSeed, n) leechers, so a seeder's peer list is drawn from a contiguous range. A record is
//
//	id [20] | addr [alen: IPv4+port = 6, IPv6+port = 18] | seen uint16 | tag uint32
//
// where seen is the coarse clock's seconds modulo 2^16 (ages compare with wrap-around; the
// expiry bound keeps every live age far below 2^16) and tag holds flagBits flag bits below a
// keyBits-bit keyed hash of the client's key (meaningful with flagKeyed only). The slab is split in chunks of chunkN records so that growth
// never copies a big array and never leaves a big garbage array behind; only the first chunk
// grows by doubling, so a one-peer torrent costs one small record.
//
// index is an open-addressing hash table with linear probing: each slot holds 0 (empty) or
// the top 8 bits of the peer ID's hash above the record number + 1, so most probes are
// decided without touching the slab.
type table struct {
	alen   int
	stride int
	n      int
	nSeed  int
	chunks [][]byte
	index  []uint32
}

const (
	chunkN     = 64
	slotBits   = 24
	slotMask   = 1<<slotBits - 1
	maxEntries = slotMask - 1

	flagCounted = 1 << 0
	flagHidden  = 1 << 1
	flagKeyed   = 1 << 2 // the peer announced a key; tag>>flagBits is its hash
	flagBits    = 3
	flagMask    = 1<<flagBits - 1
	keyBits     = 32 - flagBits
)

func newTable(alen int) *table {
	return &table{alen: alen, stride: 20 + alen + 2 + 4}
}

func (t *table) rec(i int) []byte {
	c := t.chunks[i/chunkN]
	o := (i % chunkN) * t.stride
	return c[o : o+t.stride : o+t.stride]
}

func (t *table) id(r []byte) *bittorrent.PeerID { return (*bittorrent.PeerID)(r[:20]) }
func (t *table) addr(r []byte) []byte           { return r[20 : 20+t.alen] }

// ip returns record r's IP address.
func (t *table) ip(r []byte) netip.Addr {
	if t.alen == 6 {
		return netip.AddrFrom4([4]byte(r[20:24]))
	}
	return netip.AddrFrom16([16]byte(r[20:36]))
}
func (t *table) seen(r []byte) uint16 {
	o := 20 + t.alen
	return uint16(r[o]) | uint16(r[o+1])<<8
}
func (t *table) setSeen(r []byte, s uint16) {
	o := 20 + t.alen
	r[o], r[o+1] = byte(s), byte(s>>8)
}
func (t *table) tag(r []byte) uint32 {
	o := 22 + t.alen
	return uint32(r[o]) | uint32(r[o+1])<<8 | uint32(r[o+2])<<16 | uint32(r[o+3])<<24
}
func (t *table) setTag(r []byte, v uint32) {
	o := 22 + t.alen
	r[o], r[o+1], r[o+2], r[o+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func (t *table) capacity() int {
	switch len(t.chunks) {
	case 0:
		return 0
	case 1:
		return len(t.chunks[0]) / t.stride
	}
	return len(t.chunks) * chunkN
}

// grow makes room for one more record.
func (t *table) grow() {
	c := t.capacity()
	if t.n < c {
		return
	}
	switch {
	case c == 0:
		t.chunks = append(t.chunks, make([]byte, 2*t.stride))
	case len(t.chunks) == 1 && c < chunkN:
		nc := make([]byte, min(2*c, chunkN)*t.stride)
		copy(nc, t.chunks[0])
		t.chunks[0] = nc
	default:
		t.chunks = append(t.chunks, make([]byte, chunkN*t.stride))
	}
}

// shrink frees trailing chunks once two whole chunks stand empty (hysteresis against
// allocating and freeing around a chunk boundary).
func (t *table) shrink() {
	for len(t.chunks) > 2 && t.n <= (len(t.chunks)-2)*chunkN {
		t.chunks[len(t.chunks)-1] = nil
		t.chunks = t.chunks[:len(t.chunks)-1]
	}
}

// home maps a hash to its preferred index position (Lemire's multiply-shift: the index may
// have any size, so it can grow by 1.5× instead of doubling and stay fuller on average).
func (t *table) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(t.index)))
	return int(hi)
}

// lookup returns the index position holding id (found) or the empty position where it would go.
func (t *table) lookup(id *bittorrent.PeerID, h uint64) (pos int, found bool) {
	want := uint32(h>>56) << slotBits
	size := len(t.index)
	for i := t.home(h); ; {
		v := t.index[i]
		if v == 0 {
			return i, false
		}
		if v&^slotMask == want && *t.id(t.rec(int(v&slotMask) - 1)) == *id {
			return i, true
		}
		if i++; i == size {
			i = 0
		}
	}
}

// posOf returns the index position that points at record r (which must be present).
func (t *table) posOf(seed maphash.Seed, r int) int {
	size := len(t.index)
	for i := t.home(hashID(seed, t.id(t.rec(r)))); ; {
		if int(t.index[i]&slotMask) == r+1 {
			return i
		}
		if i++; i == size {
			i = 0
		}
	}
}

func hashID(seed maphash.Seed, id *bittorrent.PeerID) uint64 {
	return maphash.Bytes(seed, id[:])
}

// Index sizing: grow when an insert would pass 85 % full, to a size 60 % full; shrink when
// under 20 % full. Between the two the index averages about 70 % full: ~5.7 bytes a peer.
const (
	indexMaxLoad = 0.85
	indexNewLoad = 0.60
	indexMinLoad = 0.20
)

// ensureIndex grows the index (or creates it) when one more record would overfill it.
func (t *table) ensureIndex(seed maphash.Seed) {
	if len(t.index) != 0 && float64(t.n+1) <= indexMaxLoad*float64(len(t.index)) {
		return
	}
	t.resizeIndex(seed, max(4, int(float64(t.n+1)/indexNewLoad)+1))
}

func (t *table) resizeIndex(seed maphash.Seed, size int) {
	t.index = make([]uint32, size)
	for r := 0; r < t.n; r++ {
		h := hashID(seed, t.id(t.rec(r)))
		i := t.home(h)
		for t.index[i] != 0 {
			if i++; i == size {
				i = 0
			}
		}
		t.index[i] = uint32(h>>56)<<slotBits | uint32(r+1)
	}
}

// insert appends a record for id as a leecher (or seeder) and returns its record number.
func (t *table) insert(seed maphash.Seed, id *bittorrent.PeerID, h uint64, seeder bool) int {
	t.ensureIndex(seed)
	pos, _ := t.lookup(id, h)
	t.grow()
	r := t.n
	t.n++
	rec := t.rec(r)
	copy(rec[:20], id[:])
	t.index[pos] = uint32(h>>56)<<slotBits | uint32(r+1)
	lo := t.nSeed
	if seeder {
		r = t.promote(seed, r)
		lo = 0
	}
	// Inside-out shuffle: swap the newcomer with a random member of its group, so the group
	// stays in random order and appendPeers can hand out contiguous runs.
	if n := r - lo + 1; n > 1 {
		j := lo + rand.IntN(n)
		t.swap(seed, r, j)
		r = j
	}
	return r
}

// swap exchanges records a and b, fixing their index slots.
func (t *table) swap(seed maphash.Seed, a, b int) {
	if a == b {
		return
	}
	pa, pb := t.posOf(seed, a), t.posOf(seed, b)
	ra, rb := t.rec(a), t.rec(b)
	var tmp [64]byte
	copy(tmp[:], ra)
	copy(ra, rb)
	copy(rb, tmp[:t.stride])
	t.index[pa] = t.index[pa]&^slotMask | uint32(b+1)
	t.index[pb] = t.index[pb]&^slotMask | uint32(a+1)
}

// promote moves leecher r into the seeder range and returns its new record number.
func (t *table) promote(seed maphash.Seed, r int) int {
	s := t.nSeed
	t.swap(seed, r, s)
	t.nSeed++
	return s
}

// demote moves seeder r into the leecher range and returns its new record number.
func (t *table) demote(seed maphash.Seed, r int) int {
	s := t.nSeed - 1
	t.swap(seed, r, s)
	t.nSeed--
	return s
}

// remove deletes record r, whose index slot is at pos.
func (t *table) remove(seed maphash.Seed, r, pos int) {
	// Backward-shift deletion keeps linear probing tombstone-free.
	size := len(t.index)
	dist := func(from, to int) int { // probe distance from position from forward to to
		if to >= from {
			return to - from
		}
		return to + size - from
	}
	i := pos
	for j := i + 1; ; j++ {
		if j == size {
			j = 0
		}
		v := t.index[j]
		if v == 0 {
			break
		}
		home := t.home(hashID(seed, t.id(t.rec(int(v&slotMask)-1))))
		// Move v back to the hole at i unless its home lies cyclically in (i, j].
		if dist(home, j) >= dist(i, j) {
			t.index[i] = v
			i = j
		}
	}
	t.index[i] = 0

	// Fill the hole keeping seeders first: the last seeder fills a seeder's hole and the last
	// record fills the last seeder's place (or a leecher's hole directly).
	if r < t.nSeed {
		t.nSeed--
		t.moveRec(seed, t.nSeed, r)
		r = t.nSeed
	}
	t.n--
	t.moveRec(seed, t.n, r)
	t.shrink()
	if len(t.index) > 16 && float64(t.n) < indexMinLoad*float64(len(t.index)) {
		t.resizeIndex(seed, max(4, int(float64(t.n)/indexNewLoad)+1))
	}
}

// moveRec copies record from over record to (whose index slot is already gone) and repoints
// from's index slot.
func (t *table) moveRec(seed maphash.Seed, from, to int) {
	if from == to {
		return
	}
	p := t.posOf(seed, from)
	copy(t.rec(to), t.rec(from))
	t.index[p] = t.index[p]&^slotMask | uint32(to+1)
}

// appendPeers appends up to want records from [lo, hi) to dst, skipping record self (-1 for
// none) and hidden peers. It takes a contiguous run from a random start, wrapping around:
// records are kept in random order (insert places each new peer at a random position of its
// group, an inside-out Fisher–Yates shuffle), so a run is a random subset, and reading it
// sequentially is several times faster than gathering scattered records.
func (t *table) appendPeers(dst []byte, withID bool, lo, hi, self, want int) []byte {
	count := hi - lo
	if count <= 0 || want <= 0 {
		return dst
	}
	r := lo
	if count > want {
		r = lo + rand.IntN(count)
	}
	for i := 0; i < count && want > 0; i++ {
		if r == hi {
			r = lo
		}
		if r != self {
			rec := t.rec(r)
			if t.tag(rec)&flagHidden == 0 {
				dst = append(dst, rec[20:20+t.alen]...)
				if withID {
					dst = append(dst, rec[:20]...)
				}
				want--
			}
		}
		r++
	}
	return dst
}
