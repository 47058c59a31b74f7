package stats

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Address families and roles, as metric label values and JSON keys.
const (
	familyV4  = "ipv4"
	familyV6  = "ipv6"
	familyWT  = "webtorrent" // WebSocket peers (browsers): no address family of their own
	roleSeed  = "seeder"
	roleLeech = "leecher"
)

// clientFamilies is the bounded set of client-family labels, in ClientFamily's order.
var (
	clientFamilies = bittorrent.ClientFamilies()
	familyIndex    = func() map[string]int {
		m := make(map[string]int, len(clientFamilies))
		for i, f := range clientFamilies {
			m[f] = i
		}
		return m
	}()
)

// peerCounts are the figures that need every peer: a Walk over the store.
type peerCounts struct {
	// byRole[seeder?1:0][ipv6?1:0]
	byRole [2][2]int
	// clients[i] counts peers of clientFamilies[i].
	clients []int
	// uniqueIPs[seeder?1:0] counts distinct addresses among seeders and leechers (bttrack's
	// "unique IPs"); only computed when withIPs (the page needs it, /metrics does not).
	uniqueIPs [2]int
	withIPs   bool
	// ws[seeder?1:0] counts the WebTorrent (WebSocket) peers.
	ws [2]int
	at time.Time
}

func (c *peerCounts) seeders() int  { return c.byRole[1][0] + c.byRole[1][1] + c.ws[1] }
func (c *peerCounts) leechers() int { return c.byRole[0][0] + c.byRole[0][1] + c.ws[0] }

// WebTorrentSource is the WebSocket tracker's side of the one swarm view: its torrents'
// counts and its totals (wsapi.Server implements it).
type WebTorrentSource = swarm.Overlay

// countPeers walks the store. Distinct addresses are counted by sorting (4 bytes per IPv4
// peer, 16 per IPv6) rather than in a map, which would cost several times that per peer.
func countPeers(store swarm.Store, now time.Time, withIPs bool) *peerCounts {
	c := &peerCounts{clients: make([]int, len(clientFamilies)), at: now, withIPs: withIPs}
	var v4 [2][]uint32
	var v6 [2][][16]byte
	if withIPs {
		tot := store.Totals()
		v4[0] = make([]uint32, 0, min(tot.Leechers, tot.PeersV4))
		v4[1] = make([]uint32, 0, min(tot.Seeders, tot.PeersV4))
	}
	other := familyIndex["other"]
	store.Walk(func(_ bittorrent.InfoHash, _ uint32, peers []swarm.PeerRecord) bool {
		for i := range peers {
			p := &peers[i]
			s := 0
			if p.Seeder {
				s = 1
			}
			a := p.Addr.Addr().Unmap()
			f := 0
			if !a.Is4() {
				f = 1
			}
			c.byRole[s][f]++
			if fi, ok := familyIndex[bittorrent.ClientFamily(p.ID)]; ok {
				c.clients[fi]++
			} else {
				c.clients[other]++
			}
			if withIPs {
				if f == 0 {
					b := a.As4()
					v4[s] = append(v4[s], uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))
				} else {
					v6[s] = append(v6[s], a.As16())
				}
			}
		}
		return true
	})
	if withIPs {
		for s := range 2 {
			slices.Sort(v4[s])
			slices.SortFunc(v6[s], func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
			c.uniqueIPs[s] = len(slices.Compact(v4[s])) + len(slices.Compact(v6[s]))
		}
	}
	return c
}

// peerCache keeps the last peerCounts for ttl; concurrent callers share one Walk.
type peerCache struct {
	store swarm.Store
	ws    WebTorrentSource // nil: none
	ttl   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last *peerCounts
}

// get returns counts at most ttl old; withIPs asks for the distinct-address counts too.
func (pc *peerCache) get(withIPs bool) *peerCounts {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	now := pc.now()
	if pc.last == nil || now.Sub(pc.last.at) >= pc.ttl || now.Before(pc.last.at) || (withIPs && !pc.last.withIPs) {
		pc.last = countPeers(pc.store, now, withIPs)
		if pc.ws != nil {
			_, pc.last.ws[1], pc.last.ws[0] = pc.ws.Totals()
		}
	}
	return pc.last
}
