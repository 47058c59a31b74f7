package udpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of webswarm_tracker_udp_packets_total. Both sets are closed.
var (
	actionLabels  = [...]string{labelConnect: "connect", labelAnnounce: "announce", labelScrape: "scrape", labelUnknown: "unknown"}
	outcomeLabels = [...]string{outcomeOK: "ok", outcomeFailed: "failed", outcomeError: "error",
		outcomeBadConnID: "bad_connection_id", outcomeDropped: "dropped"}
)

// Indexes into actionLabels.
const (
	labelConnect = iota
	labelAnnounce
	labelScrape
	labelUnknown
	numActions
)

// Indexes into outcomeLabels.
const (
	outcomeOK        = iota // answered
	outcomeFailed           // the client's mistake: an error packet with the reason
	outcomeError            // the tracker's failure: an error packet, details logged
	outcomeBadConnID        // announce or scrape with an expired or forged connection ID
	outcomeDropped          // too short to hold a transaction ID: not answered
	numOutcomes
)

// metrics holds every series resolved once, so counting a packet is an atomic add with no
// label lookup (and no allocation).
type metrics struct {
	packets    [numActions][numOutcomes]prometheus.Counter
	sendErrors prometheus.Counter
	// latency is indexed by labelConnect..labelUnknown; nil entries are not observed.
	latency [numActions]prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, latency *prometheus.HistogramVec) (*metrics, error) {
	packets := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webswarm_tracker_udp_packets_total",
		Help: "UDP tracker (BEP 15) requests by action (connect, announce, scrape, unknown) and outcome " +
			"(ok, failed, error, bad_connection_id, dropped).",
	}, []string{"action", "outcome"})
	sendErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_udp_send_errors_total",
		Help: "UDP tracker replies the socket refused to send.",
	})
	m := &metrics{sendErrors: sendErrors}
	for a := range numActions {
		for o := range numOutcomes {
			m.packets[a][o] = packets.WithLabelValues(actionLabels[a], outcomeLabels[o])
		}
	}
	if latency != nil {
		// Connects and unknown actions are "other", as the HTTP frontend files its pages.
		kinds := [numActions]string{labelConnect: "other", labelAnnounce: "announce", labelScrape: "scrape", labelUnknown: "other"}
		for a, k := range kinds {
			o, err := latency.GetMetricWithLabelValues("udp", k)
			if err != nil {
				return nil, fmt.Errorf("udpapi: latency histogram needs labels frontend and kind: %w", err)
			}
			m.latency[a] = o
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{packets, sendErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("udpapi: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
