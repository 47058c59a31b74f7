package stats

import (
	"net/netip"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Address families and roles, as metric label values and JSON keys.
const (
	familyV4  = "ipv4"
	familyV6  = "ipv6"
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
	// "unique IPs").
	uniqueIPs [2]int
	at        time.Time
}

func (c *peerCounts) seeders() int  { return c.byRole[1][0] + c.byRole[1][1] }
func (c *peerCounts) leechers() int { return c.byRole[0][0] + c.byRole[0][1] }

func countPeers(store swarm.Store, now time.Time) *peerCounts {
	c := &peerCounts{clients: make([]int, len(clientFamilies)), at: now}
	tot := store.Totals()
	var ips [2]map[netip.Addr]struct{}
	ips[0] = make(map[netip.Addr]struct{}, tot.Leechers)
	ips[1] = make(map[netip.Addr]struct{}, tot.Seeders)
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
			ips[s][a] = struct{}{}
		}
		return true
	})
	c.uniqueIPs[0], c.uniqueIPs[1] = len(ips[0]), len(ips[1])
	return c
}

// peerCache keeps the last peerCounts for ttl; concurrent callers share one Walk.
type peerCache struct {
	store swarm.Store
	ttl   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last *peerCounts
}

func (pc *peerCache) get() *peerCounts {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	now := pc.now()
	if pc.last == nil || now.Sub(pc.last.at) >= pc.ttl || now.Before(pc.last.at) {
		pc.last = countPeers(pc.store, now)
	}
	return pc.last
}
