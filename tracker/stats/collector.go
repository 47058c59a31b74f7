package stats

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// PeerCacheFor is how long the figures that need a walk over every peer are reused.
const PeerCacheFor = 5 * time.Second

// Collector exports the store's figures to Prometheus, read at scrape time
// (node_exporter style: descriptors built once, constant metrics per scrape).
type Collector struct {
	store swarm.Store
	peers *peerCache

	torrents  *prometheus.Desc
	peersDesc *prometheus.Desc
	completed *prometheus.Desc
	clients   *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of webswarm_tracker_torrents,
// webswarm_tracker_peers{role,family}, webswarm_tracker_completed_total and
// webswarm_tracker_clients{family}. The per-peer figures are cached for PeerCacheFor.
func NewCollector(store swarm.Store) *Collector {
	return newCollector(store, &peerCache{store: store, ttl: PeerCacheFor, now: time.Now})
}

func newCollector(store swarm.Store, pc *peerCache) *Collector {
	return &Collector{
		store: store,
		peers: pc,
		torrents: prometheus.NewDesc("webswarm_tracker_torrents",
			"Torrents the tracker knows (with peers, or with completions).", nil, nil),
		peersDesc: prometheus.NewDesc("webswarm_tracker_peers",
			"Peers by role (seeder, leecher) and family (ipv4, ipv6; webtorrent: browsers on the WebSocket tracker).", []string{"role", "family"}, nil),
		completed: prometheus.NewDesc("webswarm_tracker_completed_total",
			"Completed downloads known (counted once per peer), over all torrents.", nil, nil),
		clients: prometheus.NewDesc("webswarm_tracker_clients",
			"Peers by client family, from the peer_id prefix (a bounded set; unknown clients are \"other\").", []string{"family"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.torrents
	ch <- c.peersDesc
	ch <- c.completed
	ch <- c.clients
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	tot := c.store.Totals()
	pc := c.peers.get(false)
	ch <- prometheus.MustNewConstMetric(c.torrents, prometheus.GaugeValue, float64(tot.Torrents))
	ch <- prometheus.MustNewConstMetric(c.completed, prometheus.CounterValue, float64(tot.Downloaded))
	for s, role := range []string{roleLeech, roleSeed} {
		for f, fam := range []string{familyV4, familyV6} {
			ch <- prometheus.MustNewConstMetric(c.peersDesc, prometheus.GaugeValue, float64(pc.byRole[s][f]), role, fam)
		}
	}
	for s, role := range []string{roleLeech, roleSeed} {
		ch <- prometheus.MustNewConstMetric(c.peersDesc, prometheus.GaugeValue, float64(pc.ws[s]), role, familyWT)
	}
	for i, fam := range clientFamilies {
		ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(pc.clients[i]), fam)
	}
}
