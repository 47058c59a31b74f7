package rtc

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts WebRTC peers and offers. A nil *Metrics counts nothing.
type Metrics struct {
	peers   prometheus.Gauge
	offers  *prometheus.CounterVec
	refused *prometheus.CounterVec
	opened  *prometheus.CounterVec
}

// Offer results, the values of webswarm_seed_webrtc_offers_total's label.
const (
	offerAnswered = "answered" // an answer came and the data channel opened
	offerExpired  = "expired"  // no answer within the offer age
	offerFailed   = "failed"   // answered, but the connection did not open
)

// NewMetrics registers the WebRTC metrics with reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_seed_webrtc_peer_connections",
			Help: "WebRTC PeerConnections open: offers waiting for an answer, peers connecting and peers connected.",
		}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_webrtc_offers_total",
			Help: "WebRTC offers we sent through WebSocket trackers, by result (answered, expired, failed).",
		}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_webrtc_refused_total",
			Help: "WebRTC peers and offers not made or refused, and tracker messages dropped, by reason (torrent_cap, process_cap, offer_cap, bad_offer, flood: a tracker sending more than is served).",
		}, []string{"reason"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_webrtc_connections_total",
			Help: "WebRTC data channels opened, by direction (outgoing: our offer; incoming: we answered).",
		}, []string{"direction"}),
	}
	reg.MustRegister(m.peers, m.offers, m.refused, m.opened)
	return m
}

func (m *Metrics) peerDelta(d float64) {
	if m != nil {
		m.peers.Add(d)
	}
}

func (m *Metrics) offer(result string) {
	if m != nil {
		m.offers.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) refuse(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) open(outgoing bool) {
	if m == nil {
		return
	}
	dir := "incoming"
	if outgoing {
		dir = "outgoing"
	}
	m.opened.WithLabelValues(dir).Inc()
}
