package wsrelay

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	relayed *prometheus.CounterVec
	dropped *prometheus.CounterVec
	up      prometheus.Gauge

	ops, roundTrips prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_relay_messages_total",
			Help: "WebSocket offers and answers relayed to (out) and from (in) other tracker instances.",
		}, []string{"direction", "kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_ws_relay_dropped_total",
			Help: "Offers and answers for other tracker instances, or from them, dropped, by reason.",
		}, []string{"reason"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_tracker_ws_relay_up",
			Help: "1 while the last call of the WebSocket relay to Redis succeeded.",
		}),
	}
	m.ops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_ws_relay_operations_total",
		Help: "Joins, leaves, offers and answers the WebSocket relay sent to Redis; each would cost a round trip of its own without batching.",
	})
	m.roundTrips = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_ws_relay_round_trips_total",
		Help: "Pipelines the WebSocket relay sent to Redis (at most three a batch of operations).",
	})
	m.up.Set(1)
	for _, d := range []string{"out", "in"} {
		for _, k := range []string{"offer", "answer"} {
			m.relayed.WithLabelValues(d, k)
		}
	}
	for _, d := range []string{dropQueueFull, dropDown, dropTooLarge, dropNoReceiver, dropBad, dropError} {
		m.dropped.WithLabelValues(d)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.relayed, m.dropped, m.up, m.ops, m.roundTrips} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("wsrelay metrics: %w", err)
			}
		}
	}
	return m, nil
}
