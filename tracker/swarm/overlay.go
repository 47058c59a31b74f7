package swarm

import "github.com/webswarm/webswarm/internal/bittorrent"

// Overlay is a second set of peers kept outside a Store that belong to the same swarms: the
// WebSocket tracker's browsers (wsapi.Server), which no HTTP or UDP client can dial but
// which seed and leech the same torrents. Counts must be cheap: it runs on every announce.
type Overlay interface {
	// Counts returns a torrent's overlay seeders, leechers and completions, and whether the
	// overlay has the torrent.
	Counts(ih bittorrent.InfoHash) (Counts, bool)
	// RangeTorrents calls fn for every torrent of the overlay until fn returns false.
	RangeTorrents(fn func(ih bittorrent.InfoHash, c Counts) bool)
	// Totals returns the overlay's torrents, seeders and leechers.
	Totals() (torrents, seeders, leechers int)
}

// WithOverlay returns s with o's peers added to every count it reports (the one swarm view):
// Announce's and Scrape's counts, RangeTorrents (which also lists the torrents only o has)
// and Totals. Peer lists, Walk, Peers and Restore are s's alone: o's peers are never handed
// out and never saved.
func WithOverlay(s Store, o Overlay) Store { return &overlaid{Store: s, o: o} }

type overlaid struct {
	Store
	o Overlay
}

func (c *Counts) add(o Counts) {
	c.Complete += o.Complete
	c.Incomplete += o.Incomplete
	c.Downloaded += o.Downloaded
}

// Announce implements Store.
func (s *overlaid) Announce(a *Announce, out *PeerList) (Result, error) {
	r, err := s.Store.Announce(a, out)
	if oc, ok := s.o.Counts(a.InfoHash); ok {
		r.Counts.add(oc)
	}
	return r, err
}

// Scrape implements Store.
func (s *overlaid) Scrape(ih bittorrent.InfoHash) (Counts, bool) {
	c, ok := s.Store.Scrape(ih)
	if oc, ook := s.o.Counts(ih); ook {
		c.add(oc)
		ok = true
	}
	return c, ok
}

// RangeTorrents implements Store: the store's torrents with the overlay's counts added, then
// the torrents only the overlay has.
func (s *overlaid) RangeTorrents(fn func(ih bittorrent.InfoHash, c Counts) bool) {
	more := true
	s.Store.RangeTorrents(func(ih bittorrent.InfoHash, c Counts) bool {
		if oc, ok := s.o.Counts(ih); ok {
			c.add(oc)
		}
		more = fn(ih, c)
		return more
	})
	if !more {
		return
	}
	s.o.RangeTorrents(func(ih bittorrent.InfoHash, c Counts) bool {
		if _, ok := s.Store.Scrape(ih); ok {
			return true // listed above
		}
		return fn(ih, c)
	})
}

// Totals implements Store: the overlay's peers join the seeders and leechers, and its
// torrents the store does not hold join the torrents.
func (s *overlaid) Totals() Totals {
	t := s.Store.Totals()
	n, seeders, leechers := s.o.Totals()
	t.Seeders += seeders
	t.Leechers += leechers
	if n > 0 {
		s.o.RangeTorrents(func(ih bittorrent.InfoHash, c Counts) bool {
			if _, ok := s.Store.Scrape(ih); !ok {
				t.Torrents++
			}
			t.Downloaded += uint64(c.Downloaded)
			return true
		})
	}
	return t
}
