package session

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// Reasons a connection was refused (webswarm_seed_connections_refused_total{reason}).
const (
	RefusedGlobalLimit  = "global_limit"  // Serve: the process-wide connection limit
	RefusedTorrentLimit = "torrent_limit" // the torrent's MaxConns
	RefusedHandshake    = "handshake"     // the handshake failed (not a BitTorrent peer, MSE policy)
	RefusedDuplicate    = "duplicate"     // already connected to this peer ID or address
	RefusedSelf         = "self"          // we connected to ourselves
	RefusedStopped      = "stopped"       // the torrent is not running
	RefusedBanned       = "banned"        // the peer was banned for bad pieces
	RefusedBusy         = "busy"          // the torrent's loop did not take the connection in time
	// RefusedHandshakesPerIP: Serve, the address has MaxHandshakesPerIP handshakes in progress.
	RefusedHandshakesPerIP = "ip_handshakes"
	// RefusedFirstByteTimeout: Serve, the connection sent nothing within FirstByteTimeout.
	RefusedFirstByteTimeout = "first_byte_timeout"
	// RefusedHandshakeTimeout: Serve, the handshake did not finish within HandshakeTimeout.
	RefusedHandshakeTimeout = "handshake_timeout"
	// RefusedIPLimit: the torrent has MaxConnsPerIP connections with the address.
	RefusedIPLimit = "ip_limit"
)

// Reasons a peer was disconnected for misbehaving (webswarm_seed_hostile_disconnects_total).
const (
	HostileMessageTooLong  = "message_too_long"  // a message or PIECE over its limit
	HostileRequestOutside  = "request_outside"   // a REQUEST outside the torrent or a piece index past its end
	HostileRequestTooLong  = "request_too_long"  // a REQUEST over 128 KiB
	HostileBadBitfield     = "bad_bitfield"      // wrong length or spare bits set
	HostileUnknownInfoHash = "unknown_info_hash" // a handshake for a torrent we do not serve
	HostileTimeout         = "timeout"           // silent past IdleTimeout, or not reading our data
	HostileHashFailBan     = "hash_fail_ban"     // contributed to BanThreshold failed pieces
	HostileProtocol        = "protocol"          // any other protocol violation (bad length, not negotiated)
	HostileFlood           = "flood"             // far more requests or control traffic than allowed
)

var refusedReasons = []string{RefusedGlobalLimit, RefusedTorrentLimit, RefusedHandshake,
	RefusedDuplicate, RefusedSelf, RefusedStopped, RefusedBanned, RefusedBusy,
	RefusedHandshakesPerIP, RefusedFirstByteTimeout, RefusedHandshakeTimeout, RefusedIPLimit}

var hostileReasons = []string{HostileMessageTooLong, HostileRequestOutside, HostileRequestTooLong,
	HostileBadBitfield, HostileUnknownInfoHash, HostileTimeout, HostileHashFailBan,
	HostileProtocol, HostileFlood}

// Metrics are the peer engine's Prometheus metrics (webswarm_seed_*), shared by every
// torrent of a process. Labels are bounded: reasons and directions, never peers or
// info-hashes. A nil *Metrics counts nothing.
type Metrics struct {
	uploaded   prometheus.Counter
	downloaded prometheus.Counter
	peers      prometheus.Gauge
	conns      *prometheus.CounterVec
	refused    *prometheus.CounterVec
	hostile    *prometheus.CounterVec
	hashFails  prometheus.Counter
	bans       prometheus.Counter
	webBytes   prometheus.Counter
	webDropped *prometheus.CounterVec
	evicted    prometheus.Counter
	pending    prometheus.Gauge
	stalls     prometheus.Counter

	refusedBy    map[string]prometheus.Counter
	hostileBy    map[string]prometheus.Counter
	webDroppedBy map[string]prometheus.Counter
	connsBy      [2]prometheus.Counter // incoming, outgoing
	payload      payloadMetrics

	// By transport (label transport: tcp, webrtc): the peers' share of the totals above,
	// web seeds left out.
	transportPeers             *prometheus.GaugeVec
	transportUp, transportDown *prometheus.CounterVec
	peersBy                    [2]prometheus.Gauge // tcp, webrtc
	upBy, downBy               [2]prometheus.Counter
}

// Transports, the values of the transport label.
const (
	TransportTCP    = "tcp"
	TransportWebRTC = "webrtc"
)

// transportIndex is 1 for a WebRTC peer, 0 for TCP.
func transportIndex(webrtc bool) int {
	if webrtc {
		return 1
	}
	return 0
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		uploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_uploaded_bytes_total",
			Help: "Payload bytes sent to peers (PIECE blocks).",
		}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_downloaded_bytes_total",
			Help: "Payload bytes received from peers and web seeds.",
		}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_seed_peers",
			Help: "Peer connections open, all torrents.",
		}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_connections_total",
			Help: "Peer connections established, by direction (incoming, outgoing).",
		}, []string{"direction"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_connections_refused_total",
			Help: "Connections refused or dropped before use, by reason.",
		}, []string{"reason"}),
		hostile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_hostile_disconnects_total",
			Help: "Peers disconnected for misbehaving, by reason.",
		}, []string{"reason"}),
		hashFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_hash_failures_total",
			Help: "Downloaded pieces that failed their SHA-1 check.",
		}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_peers_banned_total",
			Help: "Peers banned after contributing to too many failed pieces.",
		}),
		webBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_webseed_downloaded_bytes_total",
			Help: "Payload bytes received from web seeds (BEP 19), part of webswarm_seed_downloaded_bytes_total.",
		}),
		webDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_webseeds_dropped_total",
			Help: "Web seeds given up, by reason (bad_url, not_found, no_range, bad_data, errors).",
		}, []string{"reason"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_handshakes_evicted_total",
			Help: "Incoming handshakes closed, oldest first, to make room for a new connection when every handshake slot was taken.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_seed_handshakes_pending",
			Help: "Incoming handshakes in progress.",
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_upload_stalls_total",
			Help: "Times a peer's socket took none of our data for the upload stall timeout (it does not read): the peer is choked and out of the upload slots until it drains.",
		}),
	}
	m.refusedBy = byLabel(m.refused, refusedReasons)
	m.hostileBy = byLabel(m.hostile, hostileReasons)
	m.webDroppedBy = byLabel(m.webDropped, webSeedDropReasons)
	m.connsBy[0] = m.conns.WithLabelValues("incoming")
	m.connsBy[1] = m.conns.WithLabelValues("outgoing")
	m.payload = newPayloadMetrics(reg)
	m.transportPeers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "webswarm_seed_transport_peers",
		Help: "Peers connected now, by transport (tcp, webrtc: browsers over data channels).",
	}, []string{"transport"})
	m.transportUp = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webswarm_seed_transport_uploaded_bytes_total",
		Help: "Payload bytes sent to peers, by transport (tcp, webrtc).",
	}, []string{"transport"})
	m.transportDown = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webswarm_seed_transport_downloaded_bytes_total",
		Help: "Payload bytes received from peers (web seeds not included), by transport (tcp, webrtc).",
	}, []string{"transport"})
	for i, tr := range []string{TransportTCP, TransportWebRTC} {
		m.peersBy[i] = m.transportPeers.WithLabelValues(tr)
		m.upBy[i] = m.transportUp.WithLabelValues(tr)
		m.downBy[i] = m.transportDown.WithLabelValues(tr)
	}
	if reg != nil {
		reg.MustRegister(m.uploaded, m.downloaded, m.peers, m.conns, m.refused, m.hostile, m.hashFails, m.bans, m.webBytes, m.webDropped, m.evicted, m.pending, m.stalls,
			m.transportPeers, m.transportUp, m.transportDown)
	}
	return m
}

// byLabel creates every counter of v, one per label value: the label set is bounded and
// each series exists (at zero) from the start.
func byLabel(v *prometheus.CounterVec, values []string) map[string]prometheus.Counter {
	m := make(map[string]prometheus.Counter, len(values))
	for _, l := range values {
		m[l] = v.WithLabelValues(l)
	}
	return m
}

func (m *Metrics) refuse(reason string) {
	if m != nil {
		m.refusedBy[reason].Inc()
	}
}

func (m *Metrics) evictHandshake() {
	if m != nil {
		m.evicted.Inc()
	}
}

func (m *Metrics) handshakesPending(d float64) {
	if m != nil {
		m.pending.Add(d)
	}
}

func (m *Metrics) uploadStall() {
	if m != nil {
		m.stalls.Inc()
	}
}

func (m *Metrics) hostileDisconnect(reason string) {
	if m != nil {
		m.hostileBy[reason].Inc()
	}
}

func (m *Metrics) addUploaded(n int64, webrtc bool) {
	if m != nil {
		m.uploaded.Add(float64(n))
		m.upBy[transportIndex(webrtc)].Add(float64(n))
	}
}

// addPeerDownloaded counts n bytes from a peer (addDownloaded alone: from a web seed).
func (m *Metrics) addPeerDownloaded(n int64, webrtc bool) {
	if m != nil {
		m.downloaded.Add(float64(n))
		m.downBy[transportIndex(webrtc)].Add(float64(n))
	}
}

func (m *Metrics) addDownloaded(n int64) {
	if m != nil {
		m.downloaded.Add(float64(n))
	}
}

func (m *Metrics) peerUp(outgoing, webrtc bool) {
	if m != nil {
		m.peers.Inc()
		m.peersBy[transportIndex(webrtc)].Inc()
		if outgoing {
			m.connsBy[1].Inc()
		} else {
			m.connsBy[0].Inc()
		}
	}
}

func (m *Metrics) peerDown(webrtc bool) {
	if m != nil {
		m.peers.Dec()
		m.peersBy[transportIndex(webrtc)].Dec()
	}
}

func (m *Metrics) addWebSeed(n int64) {
	if m != nil {
		m.webBytes.Add(float64(n))
	}
}

func (m *Metrics) webSeedDropped(reason string) {
	if m != nil {
		m.webDroppedBy[reason].Inc()
	}
}

func (m *Metrics) hashFail() {
	if m != nil {
		m.hashFails.Inc()
	}
}

func (m *Metrics) ban() {
	if m != nil {
		m.bans.Inc()
		m.hostileBy[HostileHashFailBan].Inc()
	}
}

// hostileReason classifies an error that ended a connection: the reason to count, or ""
// when the peer merely left (EOF, reset) or we closed it.
func hostileReason(err error) string {
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ""
	case errors.Is(err, wire.ErrMessageTooLong), errors.Is(err, wire.ErrPieceTooLong):
		return HostileMessageTooLong
	case errors.Is(err, wire.ErrRequestOutside), errors.Is(err, wire.ErrIndexOutside):
		return HostileRequestOutside
	case errors.Is(err, wire.ErrRequestTooLong):
		return HostileRequestTooLong
	case errors.Is(err, wire.ErrBadBitfield):
		return HostileBadBitfield
	case errors.Is(err, wire.ErrUnknownInfoHash):
		return HostileUnknownInfoHash
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return HostileTimeout
	case errors.Is(err, wire.ErrBadLength), errors.Is(err, wire.ErrNotNegotiated), errors.Is(err, wire.ErrBadExtended), errors.Is(err, errProtocol):
		return HostileProtocol
	case errors.Is(err, errFlood):
		return HostileFlood
	}
	return ""
}

// Errors a session ends a connection with, besides wire's.
var (
	errProtocol = errors.New("session: protocol violation")
	errFlood    = errors.New("session: peer floods us")
	errBanned   = errors.New("session: peer banned")
	errClosing  = errors.New("session: closing")
	// errDuplicate closes the one of two connections to a peer that is not kept.
	errDuplicate = errors.New("session: duplicate connection")
)
