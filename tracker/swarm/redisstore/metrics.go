package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metrics are the store's health figures: webswarm_tracker_store_up and
// webswarm_tracker_store_errors_total{op,kind}.
type metrics struct {
	up     atomic.Bool
	errors *prometheus.CounterVec
}

// Bounded label values.
var (
	storeOps   = []string{"announce", "reveal", "scrape", "walk", "restore", "expire", "totals", "secret", "health", "index"}
	errorKinds = []string{"timeout", "connection", "server"}
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webswarm_tracker_store_errors_total",
		Help: "Calls to the shared peer store (Redis) that failed, by operation and kind (timeout, connection, server).",
	}, []string{"op", "kind"})}
	m.up.Store(true)
	if reg == nil {
		return m, nil
	}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "webswarm_tracker_store_up",
		Help: "1 when the last call to the shared peer store (Redis) succeeded, else 0.",
	}, func() float64 {
		if m.up.Load() {
			return 1
		}
		return 0
	})
	for _, op := range storeOps {
		for _, k := range errorKinds {
			m.errors.WithLabelValues(op, k)
		}
	}
	for _, c := range []prometheus.Collector{m.errors, up} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("redisstore: metrics: %w", err)
		}
	}
	return m, nil
}

// fail counts a failed call and returns it wrapped in ErrUnavailable.
func (m *metrics) fail(op string, err error) error {
	m.up.Store(false)
	m.errors.WithLabelValues(op, errorKind(err)).Inc()
	return fmt.Errorf("redisstore: %s: %w: %w", op, ErrUnavailable, err)
}

func (m *metrics) ok() { m.up.Store(true) }

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne), errors.Is(err, redis.ErrClosed), errors.Is(err, net.ErrClosed):
		return "connection"
	}
	return "server"
}
