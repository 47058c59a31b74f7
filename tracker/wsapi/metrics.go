package wsapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the counters: bounded sets, fixed here.
const (
	refusedTotal    = "total"     // MaxConns
	refusedIP       = "ip"        // MaxConnsPerIP
	refusedShutdown = "shutdown"  // the tracker is stopping
	refusedUpgrade  = "handshake" // not a valid WebSocket handshake

	closedClient   = "client"    // the client closed or the socket broke
	closedIdle     = "idle"      // IdleTimeout
	closedTooLarge = "too_large" // a message over MaxMessage
	closedAbuse    = "abuse"     // MaxBadMessages
	closedStuck    = "stuck"     // a write over WriteTimeout
	closedShutdown = "shutdown"

	rejBadJSON     = "bad_json"
	rejBadAction   = "bad_action"
	rejBadField    = "bad_field"
	rejBinary      = "binary"
	rejOffers      = "too_many_offers"
	rejNotAllowed  = "not_allowed"
	rejTorrentFull = "torrent_full"
	rejSwarmsFull  = "swarms_full"
	rejPeerIDTaken = "peer_id_taken"

	dropUnknown = "unknown_offer" // an answer to no outstanding offer sent to this peer
	dropPending = "pending_full"  // MaxPendingOffers
	dropExpired = "expired"       // an offer nobody answered within OfferTTL

	dropRelayNoPeer = "relay_no_peer" // an offer from another instance for a peer gone from here
	dropRelayFull   = "relay_full"    // Config.MaxRelayPending
)

type metrics struct {
	refused  *prometheus.CounterVec
	closed   *prometheus.CounterVec
	messages *prometheus.CounterVec
	rejected *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	offers   prometheus.Counter
	answers  prometheus.Counter
	queued   prometheus.Counter // writes a socket did not take at once (conn.write)
	writes   prometheus.Counter // socket writes of frames (conn.writeBatch)
	// The messages counters, looked up once: WithLabelValues hashes its labels each call.
	msgAnnounce, msgAnswer, msgScrape prometheus.Counter
}

func newMetrics(s *Server, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_connections_refused_total",
			Help: "WebSocket upgrades refused, by reason (total, ip, shutdown, handshake).",
		}, []string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_closed_total",
			Help: "WebSocket connections closed, by reason (client, idle, too_large, abuse, stuck, shutdown).",
		}, []string{"reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_messages_total",
			Help: "WebSocket messages served, by action (announce, answer, scrape).",
		}, []string{"action"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_rejected_total",
			Help: "WebSocket messages answered with a failure reason, by reason.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_dropped_total",
			Help: "Offers and answers not relayed, by reason (unknown_offer, pending_full, expired).",
		}, []string{"reason"}),
		offers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_offers_relayed_total",
			Help: "WebRTC offers relayed to another WebSocket peer.",
		}),
		answers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_answers_relayed_total",
			Help: "WebRTC answers relayed to the peer whose offer they answer.",
		}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_writes_queued_total",
			Help: "Messages a peer's socket did not take at once, queued for it (up to 4 x --ws_max_message bytes; over that the peer is closed as stuck).",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_writes_total",
			Help: "Socket writes of WebSocket frames; the frames an event loop's pass sends to one peer go in one write.",
		}),
	}
	// Every label value exists from the start, so rate() sees the first event.
	for _, r := range []string{refusedTotal, refusedIP, refusedShutdown, refusedUpgrade} {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{closedClient, closedIdle, closedTooLarge, closedAbuse, closedStuck, closedShutdown} {
		m.closed.WithLabelValues(r)
	}
	m.msgAnnounce = m.messages.WithLabelValues("announce")
	m.msgAnswer = m.messages.WithLabelValues("answer")
	m.msgScrape = m.messages.WithLabelValues("scrape")
	for _, r := range []string{rejBadJSON, rejBadAction, rejBadField, rejBinary, rejOffers, rejNotAllowed, rejTorrentFull, rejSwarmsFull, rejPeerIDTaken} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{dropUnknown, dropPending, dropExpired, dropRelayNoPeer, dropRelayFull} {
		m.dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "webswarm_tracker_ws_connections",
		Help: "WebSocket connections open.",
	}, func() float64 { return float64(s.open.Load()) })
	maxConns := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "webswarm_tracker_ws_connections_max",
		Help: "The WebSocket connection cap (--ws_max_connections; 0: none).",
	})
	maxConns.Set(float64(max(s.cfg.MaxConns, 0)))
	for _, c := range []prometheus.Collector{m.refused, m.closed, m.messages, m.rejected, m.dropped, m.offers, m.answers, m.queued, m.writes, conns, maxConns} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("wsapi: metrics: %w", err)
		}
	}
	return m, nil
}
