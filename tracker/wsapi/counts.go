package wsapi

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Store is the tracker's store of HTTP and UDP peers, as the WebSocket tracker uses it for
// the one swarm view: its counts join the WebSocket replies, and WebSocket completions are
// counted (and saved) there. *swarm.Memory implements it.
type Store interface {
	// Scrape returns a torrent's counts of HTTP and UDP peers and its completions.
	Scrape(ih bittorrent.InfoHash) (swarm.Counts, bool)
	// CountCompletion counts one completed download of the torrent.
	CountCompletion(ih bittorrent.InfoHash) error
}

// countTable keeps every torrent's WebSocket seeders, leechers and (without a Store)
// completions where an HTTP or UDP announce can read them without taking the shard locks
// WebSocket messages hold: a read lock of one of numShards maps and atomic loads. Entries are
// added and removed under the WebSocket shard lock of their torrent (the same shard index),
// so a torrent's entry is never created twice.
type countTable struct {
	shards [numShards]countShard
	lost   prometheus.Counter // completions the Store refused
}

type countShard struct {
	mu sync.RWMutex
	m  map[bittorrent.InfoHash]*peerCount
	_  [32]byte // keep neighbouring shards' locks off one cache line
}

// peerCount is one torrent's WebSocket figures.
type peerCount struct {
	seeders, leechers atomic.Int32
	downloaded        atomic.Uint32
}

func (ct *countTable) shard(ih *bittorrent.InfoHash) *countShard {
	return &ct.shards[uint(ih[0])%numShards]
}

// get returns ih's entry, or nil.
func (ct *countTable) get(ih *bittorrent.InfoHash) *peerCount {
	sh := ct.shard(ih)
	sh.mu.RLock()
	pc := sh.m[*ih]
	sh.mu.RUnlock()
	return pc
}

// entry returns ih's entry, adding it if missing (called under ih's WebSocket shard lock).
func (ct *countTable) entry(ih *bittorrent.InfoHash) *peerCount {
	if pc := ct.get(ih); pc != nil {
		return pc
	}
	sh := ct.shard(ih)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[bittorrent.InfoHash]*peerCount)
	}
	pc := new(peerCount)
	sh.m[*ih] = pc
	sh.mu.Unlock()
	return pc
}

// drop removes ih's entry (called under ih's WebSocket shard lock, its last peer gone).
func (ct *countTable) drop(ih *bittorrent.InfoHash) {
	sh := ct.shard(ih)
	sh.mu.Lock()
	delete(sh.m, *ih)
	sh.mu.Unlock()
}

// counted records that a peer joined (delta 1) or left (-1) ih as a seeder or leecher.
func (ct *countTable) counted(ih *bittorrent.InfoHash, seeder bool, delta int32) {
	pc := ct.entry(ih)
	if seeder {
		pc.seeders.Add(delta)
	} else {
		pc.leechers.Add(delta)
	}
}

// moved records that a peer of ih became a seeder (or a leecher again).
func (ct *countTable) moved(ih *bittorrent.InfoHash, seeder bool) {
	pc := ct.entry(ih)
	if seeder {
		pc.leechers.Add(-1)
		pc.seeders.Add(1)
	} else {
		pc.seeders.Add(-1)
		pc.leechers.Add(1)
	}
}

// Counts returns a torrent's WebSocket seeders and leechers (Downloaded: completions counted
// while it has had WebSocket peers, when the Server has no Store to count them in), and
// whether it has any. It takes no lock a WebSocket message holds, and none at all while no
// torrent has WebSocket peers, so HTTP and UDP announces can add it to their counts.
func (s *Server) Counts(ih bittorrent.InfoHash) (swarm.Counts, bool) {
	if s.torrents.Load() == 0 {
		return swarm.Counts{}, false
	}
	pc := s.counts.get(&ih)
	if pc == nil {
		return swarm.Counts{}, false
	}
	return swarm.Counts{
		Complete:   uint32(max(pc.seeders.Load(), 0)),
		Incomplete: uint32(max(pc.leechers.Load(), 0)),
		Downloaded: pc.downloaded.Load(),
	}, true
}

// swarmCounts is what a WebSocket client is told of a torrent: its WebSocket peers and the
// Store's, and the Store's completions (or, without a Store, the WebSocket ones).
func (s *Server) swarmCounts(ih bittorrent.InfoHash) swarm.Counts {
	c, _ := s.Counts(ih)
	if s.cfg.Store != nil {
		if sc, ok := s.cfg.Store.Scrape(ih); ok {
			c.Complete += sc.Complete
			c.Incomplete += sc.Incomplete
			c.Downloaded += sc.Downloaded
		}
	}
	return c
}

// completed counts a peer's completion: in the Store, where it is saved with the HTTP and
// UDP completions, or else in the torrent's WebSocket figures. Called without shard locks.
func (s *Server) completed(ih bittorrent.InfoHash) {
	if s.cfg.Store == nil {
		if pc := s.counts.get(&ih); pc != nil {
			pc.downloaded.Add(1)
		}
		return
	}
	if err := s.cfg.Store.CountCompletion(ih); err != nil {
		s.counts.lost.Inc()
		s.cfg.Logger.Warn("WebSocket completion not counted", "err", err)
	}
}

// newLostCounter returns webswarm_tracker_ws_completions_lost_total, registered with reg
// unless reg is nil.
func newLostCounter(reg prometheus.Registerer) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_ws_completions_lost_total",
		Help: "WebSocket completions the peer store refused to count (it holds --max_torrents torrents).",
	})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("wsapi: metrics: %w", err)
		}
	}
	return c, nil
}
