package wsapi

import (
	"sync"

	"math/rand/v2"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// numShards splits torrents and pending offers over this many locks: no lock spans two
// torrents in different shards.
const numShards = 64

type shard struct {
	mu       sync.Mutex
	torrents map[bittorrent.InfoHash]*torrent
	offers   map[offerKey]*pendingOffer
}

// torrent is one swarm's WebSocket peers.
type torrent struct {
	peers   []*member // for random picks; member.idx is its index
	byID    map[bittorrent.PeerID]*member
	seeders int
}

// member is a connection's peer in one torrent. Its fields are guarded by the shard's lock,
// except c and ih.
type member struct {
	c       *conn
	ih      bittorrent.InfoHash
	id      bittorrent.PeerID
	seeder  bool
	counted bool  // its completion has been counted
	seen    int64 // Unix seconds of its last announce
	idx     int
	removed bool // expired or stopped: no longer in the torrent
}

// offerKey names an offer: offer_ids are chosen by the offering client, per torrent.
type offerKey struct {
	ih bittorrent.InfoHash
	id [20]byte
}

// pendingOffer is an offer relayed from one peer to another, waiting for the answer.
type pendingOffer struct {
	// from and to are the peers' connections; from is nil for an offer relayed from
	// another instance (named by instance), to for an offer relayed to one.
	from, to     *conn
	instance     string
	fromID, toID bittorrent.PeerID
	expires      int64
}

func (s *Server) shardOf(ih *bittorrent.InfoHash) *shard {
	return &s.shards[uint(ih[0])%numShards]
}

// add puts m into t (the shard locked).
func (s *Server) add(t *torrent, m *member) {
	m.idx = len(t.peers)
	t.peers = append(t.peers, m)
	t.byID[m.id] = m
	s.counts.counted(&m.ih, m.seeder, 1)
	if m.seeder {
		t.seeders++
		s.seeders.Add(1)
	} else {
		s.leechers.Add(1)
	}
}

// remove takes m out of its torrent (the shard locked), and the torrent out of the shard
// when it was the last peer.
func (s *Server) remove(sh *shard, m *member) {
	if m.removed {
		return
	}
	m.removed = true
	if s.cfg.Relay != nil {
		s.cfg.Relay.Leave(m.ih, m.id)
	}
	t := sh.torrents[m.ih]
	if t == nil {
		return
	}
	last := len(t.peers) - 1
	t.peers[m.idx] = t.peers[last]
	t.peers[m.idx].idx = m.idx
	t.peers[last] = nil
	t.peers = t.peers[:last]
	if t.byID[m.id] == m {
		delete(t.byID, m.id)
	}
	s.counts.counted(&m.ih, m.seeder, -1)
	if m.seeder {
		t.seeders--
		s.seeders.Add(-1)
	} else {
		s.leechers.Add(-1)
	}
	if len(t.peers) == 0 {
		delete(sh.torrents, m.ih)
		s.counts.drop(&m.ih)
		s.torrents.Add(-1)
	}
}

// setSeeder moves m between seeders and leechers (the shard locked).
func (s *Server) setSeeder(t *torrent, m *member, seeder bool) {
	if m.seeder == seeder {
		return
	}
	m.seeder = seeder
	s.counts.moved(&m.ih, seeder)
	if seeder {
		t.seeders++
		s.seeders.Add(1)
		s.leechers.Add(-1)
	} else {
		t.seeders--
		s.seeders.Add(-1)
		s.leechers.Add(1)
	}
}

// pick appends to dst up to n random peers of t that are not on connection c.
func pick(dst []*member, t *torrent, c *conn, n int) []*member {
	l := len(t.peers)
	if n <= 0 || l == 0 {
		return dst
	}
	start := rand.IntN(l)
	for i := 0; i < l && n > 0; i++ {
		m := t.peers[(start+i)%l]
		if m.c != c {
			dst = append(dst, m)
			n--
		}
	}
	return dst
}

// RangeTorrents calls fn with every torrent that has WebSocket peers, until fn returns false.
// fn must not call back into s.
func (s *Server) RangeTorrents(fn func(ih bittorrent.InfoHash, c swarm.Counts) bool) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for ih := range sh.torrents {
			c, _ := s.Counts(ih)
			if !fn(ih, c) {
				sh.mu.Unlock()
				return
			}
		}
		sh.mu.Unlock()
	}
}

// Totals returns the torrents with WebSocket peers, and the WebSocket seeders and leechers.
func (s *Server) Totals() (torrents, seeders, leechers int) {
	return int(s.torrents.Load()), int(s.seeders.Load()), int(s.leechers.Load())
}

// sweep drops offers older than OfferTTL and peers silent for PeerTimeout.
func (s *Server) sweep(now int64) {
	stale := now - int64(s.cfg.PeerTimeout.Seconds())
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, o := range sh.offers {
			if o.expires <= now {
				delete(sh.offers, k)
				s.forget(o)
				s.m.dropped.WithLabelValues(dropExpired).Inc()
			}
		}
		for _, t := range sh.torrents {
			for j := 0; j < len(t.peers); {
				if m := t.peers[j]; m.seen <= stale {
					s.remove(sh, m) // moves the last peer to j
					continue
				}
				j++
			}
		}
		sh.mu.Unlock()
	}
}
