package stats

import (
	"bytes"
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Sort keys accepted in ?sort=.
const (
	SortInfoHash    = "info_hash"
	SortName        = "name"
	SortSize        = "size"
	SortComplete    = "complete"
	SortDownloading = "downloading"
	SortDownloaded  = "downloaded"
	SortTransferred = "transferred"
)

var sortKeys = []string{SortInfoHash, SortName, SortSize, SortComplete, SortDownloading, SortDownloaded, SortTransferred}

// row is one torrent of the table.
type row struct {
	ih     bittorrent.InfoHash
	name   string
	size   int64 // -1: unknown
	counts swarm.Counts
}

// transferred is bttrack's "transferred": size × completions (0 when the size is unknown),
// saturating instead of overflowing.
func (r *row) transferred() uint64 {
	if r.size <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(r.size), uint64(r.counts.Downloaded))
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// table is a snapshot of every torrent with its totals. Sorted orders are computed on first
// use and kept for the snapshot's life.
type table struct {
	at   time.Time
	rows []row

	// Totals over the rows, as bttrack's totals row has them.
	seeders, leechers int
	completedActive   uint64 // completions of torrents that have peers now ("current")
	completedAll      uint64 // all completions known ("all")
	totalSize         uint64
	totalTransferred  uint64
	named             bool

	mu     sync.Mutex
	orders map[string][]int32 // "key/asc" → row indexes
}

// NameSource gives torrents' names and sizes (the allow-list). A source that also implements
// Ranger has its torrents listed even while they have no peers, as bttrack lists allowed_dir.
type NameSource interface {
	Info(ih bittorrent.InfoHash) (name string, size int64, ok bool)
}

// Ranger enumerates a NameSource's torrents.
type Ranger interface {
	Range(fn func(ih bittorrent.InfoHash, name string, size int64) bool)
}

// buildTable lists store's torrents (with the WebSocket peers joined, store being the
// page's store WithOverlay) and, with names, the allowed torrents without peers.
func buildTable(store swarm.Store, names NameSource, now time.Time) *table {
	t := &table{at: now, named: names != nil, orders: map[string][]int32{}}
	t.rows = make([]row, 0, store.Totals().Torrents+16)
	store.RangeTorrents(func(ih bittorrent.InfoHash, c swarm.Counts) bool {
		t.rows = append(t.rows, row{ih: ih, counts: c, size: -1})
		return true
	})
	if names != nil {
		// Names are looked up outside the store's locks.
		for i := range t.rows {
			if name, size, ok := names.Info(t.rows[i].ih); ok {
				t.rows[i].name, t.rows[i].size = name, size
			}
		}
		if rg, ok := names.(Ranger); ok {
			known := make(map[bittorrent.InfoHash]struct{}, len(t.rows))
			for i := range t.rows {
				known[t.rows[i].ih] = struct{}{}
			}
			rg.Range(func(ih bittorrent.InfoHash, name string, size int64) bool {
				if _, ok := known[ih]; !ok {
					t.rows = append(t.rows, row{ih: ih, name: name, size: size})
				}
				return true
			})
		}
	}
	for i := range t.rows {
		r := &t.rows[i]
		t.seeders += int(r.counts.Complete)
		t.leechers += int(r.counts.Incomplete)
		t.completedAll += uint64(r.counts.Downloaded)
		if r.counts.Complete+r.counts.Incomplete > 0 {
			t.completedActive += uint64(r.counts.Downloaded)
		}
		if r.size > 0 {
			t.totalSize += uint64(r.size)
			t.totalTransferred = satAdd(t.totalTransferred, r.transferred())
		}
	}
	return t
}

func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

// defaultOrder is the order a column sorts in when first clicked: names and hashes A→Z,
// figures largest first.
func defaultOrder(key string) string {
	if key == SortInfoHash || key == SortName {
		return "asc"
	}
	return "desc"
}

// order returns the row indexes sorted by key, ascending or descending; ties go by info-hash
// ascending so pages are stable.
func (t *table) order(key string, desc bool) []int32 {
	id := key + "/asc"
	if desc {
		id = key + "/desc"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.orders[id]; ok {
		return o
	}
	o := make([]int32, len(t.rows))
	for i := range o {
		o[i] = int32(i)
	}
	rows := t.rows
	var cmpKey func(a, b *row) int
	switch key {
	case SortName:
		cmpKey = func(a, b *row) int { return strings.Compare(a.name, b.name) }
	case SortSize:
		cmpKey = func(a, b *row) int { return cmp.Compare(a.size, b.size) }
	case SortComplete:
		cmpKey = func(a, b *row) int { return cmp.Compare(a.counts.Complete, b.counts.Complete) }
	case SortDownloading:
		cmpKey = func(a, b *row) int { return cmp.Compare(a.counts.Incomplete, b.counts.Incomplete) }
	case SortDownloaded:
		cmpKey = func(a, b *row) int { return cmp.Compare(a.counts.Downloaded, b.counts.Downloaded) }
	case SortTransferred:
		cmpKey = func(a, b *row) int { return cmp.Compare(a.transferred(), b.transferred()) }
	default:
		cmpKey = func(a, b *row) int { return 0 }
	}
	slices.SortFunc(o, func(i, j int32) int {
		a, b := &rows[i], &rows[j]
		c := cmpKey(a, b)
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return bytes.Compare(a.ih[:], b.ih[:])
	})
	t.orders[id] = o
	return o
}

// tableCache rebuilds the table at most once per ttl; concurrent callers share one build.
type tableCache struct {
	store swarm.Store
	names NameSource
	ttl   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last *table
}

func (tc *tableCache) get() *table {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	if tc.last == nil || now.Sub(tc.last.at) >= tc.ttl || now.Before(tc.last.at) {
		tc.last = buildTable(tc.store, tc.names, now)
	}
	return tc.last
}
