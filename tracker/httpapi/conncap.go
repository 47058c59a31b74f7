package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The connection cap. Every HTTP connection holds a file descriptor, and moving one from the
// accepting goroutine to its own (adopt) needs a second one for a moment: at the fd limit,
// slow clients that hold connections (slowloris) leave "Connection: close" requests working
// and make every keep-alive client fail. Server.LimitConns keeps the connections open below
// a cap set under the fd limit, with headroom for those moments; a connection accepted at the
// cap closes the one that has waited longest for a request (new, idle between requests, or
// still sending its head), and is itself closed only when every other is being answered or
// belongs to net/http.

// connCap is the state of Server.LimitConns.
type connCap struct {
	max     int64
	evicted prometheus.Counter
	refused prometheus.Counter
}

// LimitConns caps the HTTP connections open at once at max (0: no cap) and registers the
// cap's metrics with reg (nil: none). Call it before Serve.
func (s *Server) LimitConns(max int, reg prometheus.Registerer) error {
	if max < 0 {
		return fmt.Errorf("httpapi: connection cap %d: must not be negative", max)
	}
	s.cap.max = int64(max)
	s.cap.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_http_connections_evicted_total",
		Help: "HTTP connections closed to make room at the connection cap: the one that had waited longest for a request.",
	})
	s.cap.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_http_connections_refused_total",
		Help: "HTTP connections closed at once at the connection cap, no other being closable.",
	})
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "webswarm_tracker_http_connections",
		Help: "HTTP connections open (on the fast path, being served inline, or held by net/http).",
	}, func() float64 { return float64(s.open.Load()) })
	capG := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "webswarm_tracker_http_connections_max",
		Help: "The HTTP connection cap (--max_connections; 0: none).",
	})
	capG.Set(float64(max))
	if reg != nil {
		for _, c := range []prometheus.Collector{s.cap.evicted, s.cap.refused, open, capG} {
			if err := reg.Register(c); err != nil {
				return fmt.Errorf("httpapi: connection cap: %w", err)
			}
		}
	}
	return nil
}

// admit counts a connection just accepted. At the cap it closes the connection that has
// waited longest for a request; it reports false when there is none, and the caller must
// close the new connection (and call gone).
func (s *Server) admit() bool {
	n := s.open.Add(1)
	if s.cap.max == 0 || n <= s.cap.max {
		return true
	}
	var oldest *rawConn
	s.mu.Lock()
	for rc := range s.conns {
		switch rc.state.Load() {
		case connNew, connIdle, connHead:
			if oldest == nil || rc.since.Before(oldest.since) {
				oldest = rc
			}
		}
	}
	if oldest != nil {
		// Its goroutine wakes, closes and counts it gone; the connection may be over the
		// cap until then, which the headroom under the fd limit covers.
		oldest.state.Store(connActive) // not chosen twice
		oldest.c.Close()
	}
	s.mu.Unlock()
	if oldest == nil {
		s.cap.refused.Inc()
		return false
	}
	s.cap.evicted.Inc()
	return true
}

// gone counts a connection closed.
func (s *Server) gone() { s.open.Add(-1) }
