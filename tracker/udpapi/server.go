package udpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/tracker/announce"
)

// ErrServerClosed is what Serve returns once Close has been called. It wraps net.ErrClosed
// (Close closes the socket), so a caller testing for either is satisfied.
var ErrServerClosed = fmt.Errorf("udpapi: server closed: %w", net.ErrClosed)

// BEP 15's figures, the defaults of Config.
const (
	// DefaultConnIDLifetime is how long BEP 15 says a tracker should accept a connection ID.
	DefaultConnIDLifetime = 2 * time.Minute
	// DefaultMaxScrapeHashes is BEP 15's "up to about 74 torrents" in one scrape packet.
	DefaultMaxScrapeHashes = 74
)

// Config is the UDP frontend's configuration. Zero fields take the defaults.
type Config struct {
	// ConnIDLifetime is the length of a connection-ID period (default 2 min, BEP 15's
	// figure). IDs from the current and the previous period are accepted, so an ID stays
	// good for at least one lifetime and at most two.
	ConnIDLifetime time.Duration
	// MaxScrapeHashes caps the info-hashes in one scrape request (default 74); a longer
	// scrape gets an error packet.
	MaxScrapeHashes int
	// DisableScrape answers every scrape with an error packet (the tracker's --scrape off).
	DisableScrape bool
	// AllowIPOverride decides whether an IPv4 announce's IP field (BEP 15's "IP address",
	// 0 meaning the sender's) replaces the packet's source address src with claimed — as
	// bttrack's only_local_override_ip does for ip=. Nil: the field is always ignored.
	// A refused override is ignored silently, as bttrack does; the announce goes on under src.
	AllowIPOverride func(src, claimed netip.Addr) bool
	// RateLimit, when set, bounds announces per client address (the tracker's
	// --max_announce_rate; share one limiter with the HTTP frontend so that a client's
	// total is bounded). It is consulted only once the connection ID has proved the address,
	// so a spoofer cannot spend another client's allowance.
	RateLimit *announce.RateLimiter
	// Workers is the number of goroutines reading each socket (default GOMAXPROCS).
	Workers int
	// Latency, when set, observes each request's handling time under the labels
	// frontend="udp" and kind ("announce", "scrape", "other"). The caller creates and
	// registers it once for all frontends.
	Latency *prometheus.HistogramVec
	// Logger receives read errors and the tracker's internal failures (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.ConnIDLifetime == 0 {
		c.ConnIDLifetime = DefaultConnIDLifetime
	}
	if c.ConnIDLifetime < time.Second {
		return fmt.Errorf("udpapi: connection ID lifetime %v is under 1s", c.ConnIDLifetime)
	}
	if c.MaxScrapeHashes == 0 {
		c.MaxScrapeHashes = DefaultMaxScrapeHashes
	}
	if c.MaxScrapeHashes < 0 {
		return fmt.Errorf("udpapi: max scrape hashes %d is negative", c.MaxScrapeHashes)
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Workers < 0 {
		return fmt.Errorf("udpapi: %d workers", c.Workers)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Server answers BEP 15 requests on the sockets given to Serve. It is safe for concurrent
// use; one Server may serve several sockets (say, one IPv4 and one IPv6).
type Server struct {
	cfg     Config
	tracker *announce.Tracker
	ids     *connIDs
	m       *metrics
	// readLen is the receive buffer size: room for one info-hash more than the longest
	// scrape accepted, so that a longer scrape, cut to the buffer, still reads as too long.
	readLen int
	now     func() time.Time // nil: the time a packet was read; tests move the clock
	noBatch bool             // read and write one datagram at a time (tests set it)
	batched atomic.Int64     // datagrams read in batches of more than one (tests read it)

	mu      sync.Mutex
	closed  bool
	done    chan struct{} // closed by Close: wakes workers backing off after errors
	conns   map[net.PacketConn]struct{}
	serving sync.WaitGroup // one per running Serve
}

// New returns a Server answering from t, with its packet counters registered with reg (nil:
// not registered). It starts nothing: Serve does.
func New(cfg Config, t *announce.Tracker, reg prometheus.Registerer) (*Server, error) {
	if t == nil {
		return nil, errors.New("udpapi: nil tracker")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg, cfg.Latency)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:     cfg,
		tracker: t,
		ids:     newConnIDs(cfg.ConnIDLifetime),
		m:       m,
		readLen: max(2048, headerLen+infoHashLen*(cfg.MaxScrapeHashes+1)),
		done:    make(chan struct{}),
		conns:   map[net.PacketConn]struct{}{},
	}, nil
}

// packetConn is what a worker needs of a socket. *net.UDPConn has it natively and without
// allocating; other net.PacketConns are adapted.
type packetConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Serve answers requests arriving on conn with Config.Workers goroutines until Close is
// called or conn fails, and then returns ErrServerClosed (after Close) or the read error.
// Serve takes conn over: Close closes it, as does Serve when it returns.
func (s *Server) Serve(conn net.PacketConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return ErrServerClosed
	}
	s.conns[conn] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.serving.Done()
	}()

	var pc packetConn
	var bc *batchConn
	if u, ok := conn.(*net.UDPConn); ok {
		pc = u
		if !s.noBatch {
			bc = newBatchConn(u) // nil where there are no batches
		}
	} else {
		pc = adapter{conn}
	}
	errs := make(chan error, s.cfg.Workers)
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		w := s.newWorker()
		if bc != nil {
			wg.Go(func() { errs <- s.runBatch(w, bc) })
		} else {
			wg.Go(func() { errs <- s.run(w, pc) })
		}
	}
	wg.Wait()
	close(errs)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	conn.Close()
	return <-errs
}

// Close stops every Serve: it closes their sockets and waits for their workers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.serving.Wait()
		return nil
	}
	s.closed = true
	close(s.done)
	var errs []error
	for c := range s.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.mu.Unlock()
	s.serving.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("udpapi: close: %w", err)
	}
	return nil
}

// run is one worker's loop: read, handle, reply. It returns when conn is closed.
func (s *Server) run(w *worker, conn packetConn) error {
	var backoff time.Duration
	for {
		n, src, err := conn.ReadFromUDPAddrPort(w.in)
		if err != nil {
			if err := s.readFailed(err, &backoff); err != nil {
				return err
			}
			continue
		}
		backoff = 0
		start := time.Now()
		now := start
		if s.now != nil {
			now = s.now()
		}
		reply, action := w.handle(w.in[:n], src, now)
		if len(reply) > 0 {
			if _, err := conn.WriteToUDPAddrPort(reply, src); err != nil {
				s.m.sendErrors.Inc()
				s.cfg.Logger.Debug("udp tracker: send failed", "err", err)
			}
		}
		if o := s.m.latency[action]; o != nil {
			o.Observe(time.Since(start).Seconds())
		}
	}
}

// readFailed follows a failed read: a closed socket ends the worker (the error returned);
// anything else (an ICMP error reported on the socket, a full buffer) is passing, so it
// backs off as net/http does after a failed Accept, doubling *backoff, and returns nil for
// the worker to read on (ErrServerClosed if Close came meanwhile).
func (s *Server) readFailed(err error, backoff *time.Duration) error {
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("udpapi: read: %w", err)
	}
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	s.cfg.Logger.Warn("udp tracker: read failed", "err", err, "retry_in", *backoff)
	t := time.NewTimer(*backoff)
	select {
	case <-s.done:
		t.Stop()
		return ErrServerClosed
	case <-t.C:
		return nil
	}
}

// adapter gives any net.PacketConn the netip-based methods of *net.UDPConn (allocating, as
// net.Addr values do).
type adapter struct{ net.PacketConn }

func (a adapter) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, addr, err := a.ReadFrom(b)
		if err != nil {
			return n, netip.AddrPort{}, err
		}
		if u, ok := addr.(*net.UDPAddr); ok {
			return n, u.AddrPort(), nil
		}
		// Not a UDP peer: nothing BEP 15 can answer.
	}
}

func (a adapter) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return a.WriteTo(b, net.UDPAddrFromAddrPort(addr))
}
