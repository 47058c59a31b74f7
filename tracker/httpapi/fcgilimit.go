package httpapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FastCGI record types (FastCGI 1.0 specification, section 8) the limits look at.
const (
	fcgiBeginRequest = 1
	fcgiParams       = 4
)

// FastCGILimits bounds what one FastCGI client can make the tracker hold. net/http/fcgi
// buffers a request's PARAMS without bound and keeps a silent connection forever; LimitFastCGI
// puts these limits in front of it by reading the record headers as they pass.
type FastCGILimits struct {
	// MaxParams bounds the PARAMS bytes of the requests a connection has begun and not yet
	// finished sending (default 64 KiB; a tracker request needs about 1 KiB of its own plus
	// what the web server adds: its headers and the query).
	MaxParams int
	// MaxRequests bounds the requests a connection has begun and whose PARAMS are not complete
	// (default 16; Apache and nginx send one at a time).
	MaxRequests int
	// Timeout closes a connection that sends nothing for this long between requests, or that
	// takes longer to send a request's PARAMS (0: no timeout).
	Timeout time.Duration
	// MaxConns bounds the connections open at once; a new one beyond it closes the one that
	// has been idle longest (0: no limit).
	MaxConns int
	// Registerer receives the limits' metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Reasons a FastCGI connection is closed by its limits (the metric's reason label).
const (
	fcgiReasonParams   = "params_too_large"
	fcgiReasonRequests = "too_many_requests"
	fcgiReasonTimeout  = "timeout"
	fcgiReasonEvicted  = "evicted"
	fcgiReasonBad      = "bad_record"
)

// errFastCGILimit is what a limited connection's Read returns once a limit closed it.
var errFastCGILimit = errors.New("FastCGI connection over its limits")

// LimitFastCGI returns l with lim applied to every connection it accepts; serve the result
// with fcgi.Serve.
func LimitFastCGI(l net.Listener, lim FastCGILimits) (net.Listener, error) {
	if lim.MaxParams <= 0 {
		lim.MaxParams = 64 << 10
	}
	if lim.MaxRequests <= 0 {
		lim.MaxRequests = 16
	}
	if lim.Timeout < 0 || lim.MaxConns < 0 {
		return nil, fmt.Errorf("httpapi: FastCGI limits: negative timeout or connection cap")
	}
	fl := &fcgiListener{
		Listener: l,
		lim:      lim,
		conns:    make(map[*fcgiConn]struct{}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_tracker_fastcgi_closed_total",
			Help: "FastCGI connections closed by a limit, by reason (params_too_large, too_many_requests, timeout, evicted, bad_record).",
		}, []string{"reason"}),
	}
	fl.open = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "webswarm_tracker_fastcgi_connections",
		Help: "FastCGI connections open.",
	}, func() float64 {
		fl.mu.Lock()
		defer fl.mu.Unlock()
		return float64(len(fl.conns))
	})
	for _, r := range []string{fcgiReasonParams, fcgiReasonRequests, fcgiReasonTimeout, fcgiReasonEvicted, fcgiReasonBad} {
		fl.closed.WithLabelValues(r)
	}
	if lim.Registerer != nil {
		for _, c := range []prometheus.Collector{fl.closed, fl.open} {
			if err := lim.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("httpapi: FastCGI limits: %w", err)
			}
		}
	}
	return fl, nil
}

type fcgiListener struct {
	net.Listener
	lim    FastCGILimits
	closed *prometheus.CounterVec
	open   prometheus.GaugeFunc

	mu    sync.Mutex
	conns map[*fcgiConn]struct{}
}

// Accept implements net.Listener.
func (l *fcgiListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &fcgiConn{Conn: c, l: l, pending: make(map[uint16]int)}
	fc.last.Store(time.Now().UnixNano())
	var evict *fcgiConn
	l.mu.Lock()
	if l.lim.MaxConns > 0 && len(l.conns) >= l.lim.MaxConns {
		// The connection idle longest goes: a silent or stalled one before the web server's
		// busy ones. O(connections), only at the cap.
		for o := range l.conns {
			if evict == nil || o.last.Load() < evict.last.Load() {
				evict = o
			}
		}
		delete(l.conns, evict)
	}
	l.conns[fc] = struct{}{}
	l.mu.Unlock()
	if evict != nil {
		evict.fail(fcgiReasonEvicted)
	}
	return fc, nil
}

// fcgiConn is one FastCGI connection: Read follows the record headers going by and fails,
// closing the connection, once the client goes over a limit.
type fcgiConn struct {
	net.Conn
	l *fcgiListener

	// last is when Read last returned data (unix nanoseconds), for eviction.
	last atomic.Int64
	once sync.Once

	// Read's own state (fcgi.Serve reads a connection from one goroutine).
	hdr     [8]byte
	nhdr    int            // header bytes seen of the record being read
	skip    int            // content and padding bytes left of the record being read
	typ     byte           // type of the record being read
	id      uint16         // its request ID
	content int            // its content bytes left (PARAMS are counted as they pass)
	pending map[uint16]int // requests begun, PARAMS not complete: bytes so far
	params  int            // sum of pending
	reason  string         // set when a limit tripped; Read fails from then on
}

// Read implements net.Conn.
func (c *fcgiConn) Read(p []byte) (int, error) {
	if c.reason != "" {
		return 0, errFastCGILimit
	}
	if t := c.l.lim.Timeout; t > 0 && len(c.pending) == 0 {
		// Between requests (or at the first record of one): the next must come in time.
		// While a request's PARAMS are incomplete the deadline is not moved, so they must
		// all arrive within Timeout of its start.
		c.Conn.SetReadDeadline(time.Now().Add(t))
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
		if reason := c.scan(p[:n]); reason != "" {
			c.reason = reason
			c.fail(reason)
			return 0, errFastCGILimit
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.reason = fcgiReasonTimeout
		c.fail(fcgiReasonTimeout)
	}
	return n, err
}

// scan follows the records in b and returns the reason of a limit b goes over ("" if none).
func (c *fcgiConn) scan(b []byte) string {
	lim := &c.l.lim
	for len(b) > 0 {
		if c.skip == 0 {
			k := copy(c.hdr[c.nhdr:], b)
			c.nhdr += k
			b = b[k:]
			if c.nhdr < len(c.hdr) {
				return ""
			}
			c.nhdr = 0
			if c.hdr[0] != 1 { // version FCGI_VERSION_1
				return fcgiReasonBad
			}
			c.typ = c.hdr[1]
			c.id = binary.BigEndian.Uint16(c.hdr[2:4])
			c.content = int(binary.BigEndian.Uint16(c.hdr[4:6]))
			c.skip = c.content + int(c.hdr[6])
			switch c.typ {
			case fcgiBeginRequest:
				if _, ok := c.pending[c.id]; !ok {
					if len(c.pending) >= lim.MaxRequests {
						return fcgiReasonRequests
					}
					c.pending[c.id] = 0
				}
			case fcgiParams:
				got, ok := c.pending[c.id]
				if !ok {
					break // not begun: net/http/fcgi ignores it
				}
				if c.content == 0 { // the end of this request's PARAMS
					c.params -= got
					delete(c.pending, c.id)
					break
				}
				if c.params+c.content > lim.MaxParams {
					return fcgiReasonParams
				}
				c.pending[c.id] = got + c.content
				c.params += c.content
			}
			continue
		}
		k := min(c.skip, len(b))
		c.skip -= k
		b = b[k:]
	}
	return ""
}

// fail closes the connection once, counting why. Read's goroutine (a limit) and Accept's
// (eviction) may both call it.
func (c *fcgiConn) fail(reason string) {
	c.once.Do(func() {
		c.l.closed.WithLabelValues(reason).Inc()
		c.l.forget(c)
		c.Conn.Close()
	})
}

// Close implements net.Conn.
func (c *fcgiConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}

func (l *fcgiListener) forget(c *fcgiConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}
