package wsapi

import (
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Server serves WebSocket announces. It is safe for concurrent use; Close stops it.
type Server struct {
	cfg    Config
	m      *metrics
	up     websocket.Upgrader
	shards [numShards]shard
	counts countTable // read by HTTP and UDP announces (Counts)

	open                        atomic.Int64 // connections admitted and not yet gone
	torrents, seeders, leechers atomic.Int64
	relayPending                atomic.Int64 // offers from other instances awaiting an answer

	mu      sync.Mutex
	conns   map[*conn]struct{}
	perIP   map[netip.Prefix]int
	closing bool
	wg      sync.WaitGroup // one per connection being served
	stop    chan struct{}
	done    chan struct{}

	// poll waits for the sockets of idle connections to become readable and hands them to
	// its workers (poll_linux.go); nil where there is no poller: a goroutine per connection
	// reads then.
	poll *poller

	// bufs holds *[]byte message buffers: a peer holds two (the message read and the
	// messages written) only while a message of its is served, none while idle.
	bufs sync.Pool
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (s *Server) putBuf(b *[]byte) {
	*b = (*b)[:0]
	s.bufs.Put(b)
}

// New returns a Server and starts its pinger and sweeper; Close stops them.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:   cfg,
		conns: make(map[*conn]struct{}),
		perIP: make(map[netip.Prefix]int),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	var err error
	if s.m, err = newMetrics(s, cfg.Registerer); err != nil {
		return nil, err
	}
	if s.counts.lost, err = newLostCounter(cfg.Registerer); err != nil {
		return nil, err
	}
	for i := range s.shards {
		s.shards[i].torrents = make(map[bittorrent.InfoHash]*torrent)
		s.shards[i].offers = make(map[offerKey]*pendingOffer)
	}
	s.up = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteTimeout,
		// Pages on any site may use the tracker: that is what a public tracker is for, and
		// the protocol carries nothing a cookie would protect.
		CheckOrigin: func(*http.Request) bool { return true },
		// The Conn that Upgrade returns is dropped once it has answered the handshake (its
		// socket is all that is kept): no buffers of its own, then.
		WriteBufferPool: &sync.Pool{},
	}
	if !cfg.noPoll {
		if s.poll, err = newPoller(s, pollWorkers()); err != nil {
			return nil, err
		}
	}
	if cfg.Relay != nil {
		cfg.Relay.Start(s.deliver)
	}
	go s.run()
	return s, nil
}

// clientKey is what MaxConnsPerIP counts by: an IPv4 address or an IPv6 /64.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// ServeWebSocket upgrades r, an announce request with "Upgrade: websocket" from client (the
// address the caller resolved, trusted proxies considered), and serves the connection on a
// poller (or a goroutine of its own where there is none), which Close stops. It returns once
// the upgrade is done (or refused), so that net/http's per-request state is freed while the
// peer stays connected: an idle peer costs its socket and its state (conn), no goroutine
// and no buffer.
func (s *Server) ServeWebSocket(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	key := clientKey(client)
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		s.m.refused.WithLabelValues(refusedShutdown).Inc()
		http.Error(w, "tracker is shutting down", http.StatusServiceUnavailable)
		return
	case s.cfg.MaxConns > 0 && s.open.Load() >= int64(s.cfg.MaxConns):
		s.mu.Unlock()
		s.m.refused.WithLabelValues(refusedTotal).Inc()
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many WebSocket connections", http.StatusServiceUnavailable)
		return
	case s.cfg.MaxConnsPerIP > 0 && s.perIP[key] >= s.cfg.MaxConnsPerIP:
		s.mu.Unlock()
		s.m.refused.WithLabelValues(refusedIP).Inc()
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many WebSocket connections from your address", http.StatusTooManyRequests)
		return
	}
	s.perIP[key]++
	s.open.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()

	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		s.m.refused.WithLabelValues(refusedUpgrade).Inc() // Upgrade has answered 400
		s.release(key)
		return
	}
	// gorilla's Conn is done with: the handshake is answered, nothing of the client's was
	// read past it (Upgrade refuses a client that sent data before the 101), and frames are
	// read and written on the socket from here on (conn.go).
	c := &conn{s: s, nc: ws.NetConn(), key: key, fd: -1, members: make(map[bittorrent.InfoHash]*member)}
	c.seen.Store(time.Now().UnixNano())
	polled := s.poll != nil && s.poll.prepare(c)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.closeWith(closeGoingAway, "tracker is shutting down")
		c.finish(closedShutdown)
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	if polled && s.poll.watch(c) {
		return
	}
	go c.readLoop()
}

// release gives back what ServeWebSocket took for a connection from client key.
func (s *Server) release(key netip.Prefix) {
	s.mu.Lock()
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
	s.mu.Unlock()
	s.open.Add(-1)
	s.wg.Done()
}

// Close closes every WebSocket connection (with "going away"), waits until each is gone,
// and stops the pinger.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	close(s.stop)
	for _, c := range conns {
		c.end(endShutdown)
		c.closeWith(closeGoingAway, "tracker is shutting down")
	}
	s.wg.Wait()
	<-s.done
	if s.poll != nil {
		s.poll.close()
	}
	return nil
}

// run pings every connection each PingInterval, which keeps live peers from the proxies'
// read timeouts and our IdleTimeout, closes the connections idle for IdleTimeout, and sweeps
// expired offers and peers.
func (s *Server) run() {
	defer close(s.done)
	tick := time.NewTicker(min(s.cfg.PingInterval, s.cfg.OfferTTL, time.Second*30))
	defer tick.Stop()
	lastPing := s.cfg.Now()
	var conns []*conn
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		now := s.cfg.Now()
		s.sweep(now.Unix())
		ping := now.Sub(lastPing) >= s.cfg.PingInterval
		if ping {
			lastPing = now
		}
		conns = conns[:0]
		s.mu.Lock()
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		idleSince := time.Now().Add(-s.cfg.IdleTimeout).UnixNano()
		for _, c := range conns {
			select {
			case <-s.stop:
				return
			default:
			}
			switch {
			case c.seen.Load() < idleSince:
				c.end(endIdle)
				c.closeWith(closeGoingAway, "idle")
			case ping:
				c.ping()
			}
		}
		clear(conns)
	}
}

// leave removes the connection's peers from their torrents.
func (c *conn) leave() {
	for ih, m := range c.members {
		sh := c.s.shardOf(&ih)
		sh.mu.Lock()
		c.s.remove(sh, m)
		sh.mu.Unlock()
	}
	clear(c.members)
}

// refuse answers a message with a failure reason; abuse reasons count towards MaxBadMessages.
func (c *conn) refuse(reason, action string, ih []byte, text string) {
	c.s.m.rejected.WithLabelValues(reason).Inc()
	switch reason {
	case rejBadJSON, rejBadAction, rejBadField, rejBinary, rejOffers:
		c.bad++
	}
	c.sendTo(c, failureMessage(action, ih, text))
}
