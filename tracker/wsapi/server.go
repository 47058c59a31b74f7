package wsapi

import (
	"errors"
	"io"
	"net"
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

// readAll appends what r reads to b until io.EOF.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
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
		// Idle peers hold no write buffer: one is taken from the pool for each message; and
		// a 1 KiB read buffer of their own instead of net/http's 4 KiB one. (Measured, 10,000
		// idle connections: 6.7 KB of RSS each this way, 17.3 KB with net/http's buffers and
		// the handler kept running, 23.7 KB with coder/websocket.)
		ReadBufferSize:  1024,
		WriteBufferPool: &sync.Pool{},
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
// goroutine of its own, which Close stops. It returns once the upgrade is done (or refused),
// so that net/http's per-request state is freed while the peer stays connected: an idle peer
// costs its socket, a small read buffer and a goroutine blocked in a read.
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
	c := &conn{s: s, ws: ws, members: make(map[bittorrent.InfoHash]*member), done: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.m.closed.WithLabelValues(closedShutdown).Inc()
		c.closeWith(websocket.CloseGoingAway, "tracker is shutting down")
		s.release(key)
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer s.release(key)
		reason := c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		if s.closing {
			reason = closedShutdown
		}
		s.mu.Unlock()
		c.leave()
		s.m.closed.WithLabelValues(reason).Inc()
	}()
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
		c.closeWith(websocket.CloseGoingAway, "tracker is shutting down")
	}
	s.wg.Wait()
	<-s.done
	return nil
}

// run pings every connection each PingInterval, which keeps live peers from the proxies'
// read timeouts and our IdleTimeout, and sweeps expired offers and peers.
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
		if now.Sub(lastPing) < s.cfg.PingInterval {
			continue
		}
		lastPing = now
		conns = conns[:0]
		s.mu.Lock()
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			select {
			case <-s.stop:
				return
			default:
			}
			c.ping(now)
		}
		clear(conns)
	}
}

// pingWait bounds writing a ping: a peer whose socket takes none of it is stuck.
const pingWait = 2 * time.Second

// conn is one WebSocket connection.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	wmu     sync.Mutex // one writer of data messages at a time
	dead    atomic.Bool
	stuck   atomic.Bool
	pending atomic.Int32 // its offers waiting for an answer
	// Owned by the reading goroutine:
	members map[bittorrent.InfoHash]*member
	bad     int
	buf     []byte        // the messages written while one is served, from Server.bufs
	done    chan struct{} // a message has been served (see serve)
}

// send writes one text message; a peer that does not take it within WriteTimeout is closed.
func (c *conn) send(b []byte) {
	if c.dead.Load() {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.kill(err)
	}
}

func (c *conn) ping(now time.Time) {
	if c.dead.Load() {
		return
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, now.Add(pingWait)); err != nil {
		c.kill(err)
	}
}

// kill closes the socket after a failed write; the reading goroutine then cleans up.
func (c *conn) kill(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.stuck.Store(true)
	}
	c.dead.Store(true)
	c.ws.NetConn().Close()
}

// closeWith sends a close frame and closes the socket.
func (c *conn) closeWith(code int, text string) {
	c.dead.Store(true)
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(pingWait))
	c.ws.NetConn().Close()
}

// serve reads messages until the connection ends and returns why it ended.
func (c *conn) serve() string {
	cfg := &c.s.cfg
	ws := c.ws
	ws.SetReadLimit(cfg.MaxMessage)
	ws.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
	})
	for {
		mt, r, err := ws.NextReader()
		var data *[]byte
		if err == nil {
			data = c.s.getBuf()
			*data, err = readAll(r, *data)
		}
		if err != nil {
			if data != nil {
				c.s.putBuf(data)
			}
			var ne net.Error
			switch {
			case c.stuck.Load():
				return closedStuck
			case errors.Is(err, websocket.ErrReadLimit):
				c.closeWith(websocket.CloseMessageTooBig, "message too large")
				return closedTooLarge
			case errors.As(err, &ne) && ne.Timeout():
				c.closeWith(websocket.CloseGoingAway, "idle")
				return closedIdle
			}
			ws.NetConn().Close()
			return closedClient
		}
		ws.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		// The message is served on a goroutine of its own, which this one waits for: JSON
		// decoding and relaying grow a stack to 8 KiB, and a goroutine keeps its stack while
		// it waits for the next message. Served here, that cost 8.2 KB of stack per idle
		// peer (at 10,000 peers, more than the heap); waiting with a shallow stack, ~2 KB.
		go func() {
			wb := c.s.getBuf()
			c.buf = *wb
			if mt != websocket.TextMessage {
				c.refuse(rejBinary, "", nil, "binary messages are not accepted: send JSON text")
			} else {
				c.handle(*data)
			}
			*wb, c.buf = c.buf, nil
			c.s.putBuf(wb)
			c.done <- struct{}{}
		}()
		<-c.done
		c.s.putBuf(data)
		if c.bad >= cfg.MaxBadMessages {
			c.closeWith(websocket.ClosePolicyViolation, "too many malformed messages")
			return closedAbuse
		}
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
	c.send(failureMessage(action, ih, text))
}
