package announce

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// Metrics are the core's counters. Label sets are bounded: events, outcomes and failure codes
// only — never info-hashes or addresses.
type Metrics struct {
	announces *prometheus.CounterVec
	failures  *prometheus.CounterVec
	scrapes   *prometheus.CounterVec
	natChecks *prometheus.CounterVec
	// natResult holds natChecks' counters by the nat* result indexes; natPending is the
	// number of peers waiting for a NAT check.
	natResult  [len(natResults)]prometheus.Counter
	natPending prometheus.Gauge

	// byEvent caches the announce counters per event and outcome: WithLabelValues allocates.
	byEvent [4][3]prometheus.Counter
}

// NewMetrics creates the core's metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_announces_total",
			Help: "Announces by event (none, started, completed, stopped) and outcome (ok, failed, error).",
		}, []string{"event", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_failures_total",
			Help: "Requests refused with a failure reason, by reason code.",
		}, []string{"reason"}),
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_scrapes_total",
			Help: "Scrape requests by kind (specific, full) and outcome (ok, failed).",
		}, []string{"kind", "outcome"}),
		natChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_nat_checks_total",
			Help: "NAT checks of new peers by result: ok, failed (the peer is not handed out), cached (its address accepted a check lately), queue_full and source_busy (handed out unchecked: the queue or the source's share of it was full).",
		}, []string{"result"}),
		natPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_tracker_nat_check_pending",
			Help: "New peers waiting for a NAT check (queued or being checked), at most --nat_check_queue.",
		}),
	}
	for _, ev := range []swarm.Event{swarm.None, swarm.Started, swarm.Completed, swarm.Stopped} {
		for i, o := range []string{"ok", "failed", "error"} {
			m.byEvent[ev][i] = m.announces.WithLabelValues(ev.String(), o)
		}
	}
	for _, c := range FailureCodes() {
		m.failures.WithLabelValues(c)
	}
	for _, k := range []string{"specific", "full"} {
		for _, o := range []string{"ok", "failed"} {
			m.scrapes.WithLabelValues(k, o)
		}
	}
	for i, r := range natResults {
		m.natResult[i] = m.natChecks.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.announces, m.failures, m.scrapes, m.natChecks, m.natPending)
	}
	return m
}

// NAT check results, indexes of Metrics.natResult.
const (
	natOK = iota
	natFailed
	natCached
	natQueueFull
	natSourceBusy
)

var natResults = [...]string{natOK: "ok", natFailed: "failed", natCached: "cached", natQueueFull: "queue_full", natSourceBusy: "source_busy"}

func (m *Metrics) observeAnnounce(ev swarm.Event, err error) {
	outcome := 0
	if err != nil {
		if ce := AsClientError(err); ce != nil {
			outcome = 1
			m.failures.WithLabelValues(ce.Code).Inc()
		} else {
			outcome = 2
		}
	}
	m.byEvent[ev&3][outcome].Inc()
}

// Failure counts a refusal a frontend made before the core saw the request (a parse error,
// a rate limit).
func (m *Metrics) Failure(code string) { m.failures.WithLabelValues(code).Inc() }

// Scrape counts a scrape request of kind "specific" or "full".
func (m *Metrics) Scrape(kind string, ok bool) {
	o := "ok"
	if !ok {
		o = "failed"
	}
	m.scrapes.WithLabelValues(kind, o).Inc()
}
