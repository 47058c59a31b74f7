package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves a Handler over HTTP/1.x with a fast path for the tracker's hot routes: a GET
// of /announce or /scrape (after the mount prefix) is read, answered and written straight on
// the socket, without net/http's per-request objects and deadlines. Every other request —
// and the rest of its connection — goes, with the bytes already read, to an http.Server
// serving the same Handler, so the stats pages, metrics, HEAD, POST and any odd or invalid
// request get exactly net/http's answer. The fast path answers only heads net/http would read
// the same way (see parseHead), with the same status, headers, body, access log line and
// latency observation.
//
// Timeouts follow the http.Server's: ReadHeaderTimeout bounds reading a request's head,
// IdleTimeout the wait for the next request (each falling back to ReadTimeout), WriteTimeout
// writing a reply. Without WriteTimeout, Config.WriteTimeout bounds writing a large reply, as
// in Handler, and also, renewed at most twice per period, the writing of small ones — so a
// client that never reads its replies is cut off (net/http would wait for it forever).
// MaxHeaderBytes bounds the head the fast path buffers; a longer one goes to net/http, which
// applies its own limit.
type Server struct {
	h       *Handler
	hs      *http.Server
	rht     time.Duration // ReadHeaderTimeout, or ReadTimeout
	idle    time.Duration // IdleTimeout, or ReadTimeout
	maxHead int

	closing  atomic.Bool
	handoffs atomic.Int64 // requests handed to net/http (tests read it)
	inlined  atomic.Int64 // connections served whole by the accepting goroutine (tests read it)
	noInline bool         // serve every connection on its own goroutine (tests set it)
	extra    []io.Closer  // the inline accept loops' duplicates of the listening socket
	pool     sync.Pool    // *rawConn
	open     atomic.Int64 // connections accepted and not yet closed (see conncap.go)
	cap      connCap

	mu    sync.Mutex
	ln    net.Listener
	hl    *handoffListener
	conns map[*rawConn]struct{}
	quit  chan struct{} // closed when shutting down
	wg    sync.WaitGroup
}

// NewServer returns a Server for h. hs serves the requests the fast path hands over; a nil
// hs.Handler is set to h. Its timeouts and MaxHeaderBytes apply to the fast path too. hs
// must not be served or shut down by anyone else: Server.Serve, Shutdown and Close do that.
func NewServer(h *Handler, hs *http.Server) *Server {
	if hs.Handler == nil {
		hs.Handler = h
	}
	s := &Server{h: h, hs: hs, conns: make(map[*rawConn]struct{}), quit: make(chan struct{})}
	s.rht, s.idle = hs.ReadHeaderTimeout, hs.IdleTimeout
	if s.rht == 0 {
		s.rht = hs.ReadTimeout
	}
	if s.idle == 0 {
		s.idle = hs.ReadTimeout
	}
	s.maxHead = hs.MaxHeaderBytes
	if s.maxHead <= 0 {
		s.maxHead = http.DefaultMaxHeaderBytes
	}
	s.pool.New = func() any {
		small := make([]byte, rawBufSize)
		return &rawConn{s: s, small: small, buf: small, out: make([]byte, 0, 1024)}
	}
	return s
}

const (
	// rawBufSize is a connection's read buffer: an announce head is 300–600 bytes; a longer
	// head grows the buffer, up to MaxHeaderBytes, for that request only.
	rawBufSize = 4 << 10
	// lingerTime and lingerBytes bound the reading of unread input after the reply to a
	// "Connection: close" request. Closing a socket with unread input makes the kernel send a
	// reset, which can destroy the reply before the client reads it; so the fast path sends
	// FIN first and drains a little (as net/http's closeWriteAndWait does).
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
	// newConnGrace is how long Shutdown lets a new connection send its first request before
	// closing it, as net/http does.
	newConnGrace = 5 * time.Second
)

// Serve accepts connections on l until Shutdown or Close, and returns http.ErrServerClosed
// then. l is closed when Serve returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("httpapi: Server.Serve called twice")
	}
	s.ln, s.hl = l, newHandoffListener(l.Addr())
	s.wg.Add(2)
	s.mu.Unlock()
	defer s.wg.Done()
	defer l.Close()
	go func() {
		defer s.wg.Done()
		// It returns when Shutdown or Close closes the hand-off listener.
		if err := s.hs.Serve(s.hl); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.h.cfg.Logger.Error("HTTP hand-off server", "err", err)
		}
	}()
	if tl, ok := l.(*net.TCPListener); ok && !s.noInline {
		if ok, err := s.serveInline(tl); ok {
			return err
		}
	}
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || !te.Temporary() {
				return fmt.Errorf("httpapi: accept: %w", err)
			}
			if delay = acceptDelay(delay); !s.acceptPause(err, delay) {
				return http.ErrServerClosed
			}
			continue
		}
		delay = 0
		if !s.admit() {
			c.Close()
			s.gone()
			continue
		}
		rc := s.pool.Get().(*rawConn)
		rc.c = c
		rc.setPeer(peerAddr(c))
		if !s.track(rc) {
			return http.ErrServerClosed
		}
		go s.serveConn(rc)
	}
}

// acceptDelay is how long to wait after a failed accept (out of file descriptors and the
// like) that came after one that failed after prev: doubling, as net/http's.
func acceptDelay(prev time.Duration) time.Duration {
	return min(max(2*prev, 5*time.Millisecond), time.Second)
}

// acceptPause logs a passing accept failure (out of file descriptors and the like) and waits
// delay before the next accept, as net/http does; false when shutdown came meanwhile.
func (s *Server) acceptPause(err error, delay time.Duration) bool {
	s.h.cfg.Logger.Error("HTTP accept; retrying", "err", err, "delay", delay)
	t := time.NewTimer(delay)
	select {
	case <-t.C:
		return true
	case <-s.quit:
		t.Stop()
		return false
	}
}

// setPeer sets the connection's client address and what follows from it.
func (rc *rawConn) setPeer(a netip.Addr) {
	rc.peer = a
	rc.trusted = rc.s.h.trusted(a)
}

// track registers a connection about to be served on its own goroutine (serveConn); when
// shutting down it closes the connection, returns rc to the pool and reports false.
func (s *Server) track(rc *rawConn) bool {
	rc.since = time.Now()
	rc.state.Store(connNew)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		rc.c.Close()
		s.gone()
		rc.reset()
		return false
	}
	s.conns[rc] = struct{}{}
	s.wg.Add(1)
	return true
}

// reset returns rc, its connection closed or given away, to the pool.
func (rc *rawConn) reset() {
	if rc.st != nil {
		rc.s.h.pool.Put(rc.st)
	}
	rc.st, rc.pending = nil, pendingReply{}
	rc.c, rc.buf, rc.r, rc.w, rc.deadline, rc.wdl, rc.hd = nil, rc.small, 0, 0, false, time.Time{}, head{}
	rc.s.pool.Put(rc)
}

// peerAddr returns the connection's remote address, as remoteAddr reads it from net/http.
func peerAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		return ap.Addr().Unmap()
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in flight finish (their
// replies say "Connection: close") and shuts the hand-off http.Server down alongside. It
// returns ctx's error if ctx ends first; Close then ends what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	// The http.Server's own Shutdown closes the hand-off listener at once: a request the
	// fast path reads from now on and cannot answer is dropped, as net/http drops a request
	// it reads during shutdown.
	hsDone := make(chan error, 1)
	go func() { hsDone <- s.hs.Shutdown(ctx) }()
	// Poll, as http.Server.Shutdown does: connections go idle or away on their own.
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 100*time.Millisecond)
			t.Reset(wait)
		}
	}
	err := <-hsDone // bounded by ctx
	s.closeHandoff()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the waiter ends with the last goroutine (Close ends them all)
	}
}

// Close closes the listener and every connection at once, and waits for their goroutines.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	for rc := range s.conns {
		rc.c.Close()
	}
	s.mu.Unlock()
	err := s.hs.Close()
	s.closeHandoff()
	s.wg.Wait()
	return err
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing.Swap(true) {
		close(s.quit)
	}
	if s.ln != nil {
		s.ln.Close()
	}
	for _, l := range s.extra {
		l.Close()
	}
}

func (s *Server) closeHandoff() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hl != nil {
		s.hl.Close()
	}
}

// closeIdle closes the connections waiting for a request (new ones after newConnGrace) and
// reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rc := range s.conns {
		switch rc.state.Load() {
		case connIdle:
			rc.c.Close()
		case connNew:
			if time.Since(rc.since) > newConnGrace {
				rc.c.Close()
			}
		}
	}
	return len(s.conns) == 0
}

// Connection states, for Shutdown.
const (
	connNew    = iota // waiting for the first request's first bytes
	connActive        // answering, or handing over
	connIdle          // waiting for a later request's first bytes
	connHead          // part of a head is in: reading the rest
)

// rawConn is one connection on the fast path. It is pooled with its buffers.
type rawConn struct {
	s       *Server
	c       net.Conn
	peer    netip.Addr
	trusted bool // peer is a trusted proxy: its forwarding headers count
	since   time.Time
	state   atomic.Int32

	small    []byte    // the pooled read buffer
	buf      []byte    // small, or a larger one while a long head is read
	r, w     int       // buf[r:w] is read and not yet consumed
	deadline bool      // a read deadline is set on c
	wdl      time.Time // the write deadline set on c (zero: none)
	out      []byte    // the reply head (and a small body)
	hd       head
	st       *state       // the Handler's state holding a big reply's body, until it is sent
	pending  pendingReply // a reply the accepting goroutine could not write whole
}

// pendingReply is the part of a reply left to write when serveFD moved its connection to
// serveConn: rc.out, and big (see compose).
type pendingReply struct {
	ok    bool
	start time.Time
	big   []byte
	n     int
}

// readResult says what readHead found.
type readResult int

const (
	readHead    readResult = iota // buf[r:r+n] is a whole head
	readHandOff                   // something for net/http: bare LF, a head too long, a cut-off request
	readClosed                    // EOF between requests, a timeout, a reset: close quietly
)

func (s *Server) serveConn(rc *rawConn) {
	defer s.wg.Done()
	handed := false
	defer func() {
		s.mu.Lock()
		delete(s.conns, rc)
		s.mu.Unlock()
		if !handed {
			rc.c.Close()
			s.gone()
		}
		rc.reset()
	}()
	if p := rc.pending; p.ok {
		rc.pending = pendingReply{}
		rc.send(p.start, p.big, p.n, true)
		return
	}
	if s.rht > 0 {
		rc.c.SetReadDeadline(rc.since.Add(s.rht))
		rc.deadline = true
	}
	for first := true; ; first = false {
		n, res := rc.readHead(first)
		switch res {
		case readClosed:
			return
		case readHandOff:
			handed = s.handOff(rc)
			return
		}
		rc.state.Store(connActive)
		kind := rc.route(n)
		if kind == kindOther {
			handed = s.handOff(rc)
			return
		}
		rc.r += n
		closeAfter := rc.hd.close || s.closing.Load()
		if !rc.answer(kind, closeAfter) {
			return
		}
		if closeAfter {
			rc.linger()
			return
		}
		if rc.r == rc.w {
			rc.r, rc.w = 0, 0
			rc.buf = rc.small // drop a buffer grown for a long head
		}
	}
}

// route parses the head in buf[r:r+n] into hd and says which fast route serves it:
// kindAnnounce, kindScrape, or kindOther for net/http.
func (rc *rawConn) route(n int) int {
	hd := &rc.hd
	if !parseHead(string(rc.buf[rc.r:rc.r+n]), hd) {
		return kindOther
	}
	// Plain HTTP: X-Forwarded-Prefix names what the proxy stripped already (see Config.Prefix).
	switch rc.s.h.routePath(hd.path, "") {
	case "/announce":
		return kindAnnounce
	case "/scrape":
		return kindScrape
	}
	return kindOther
}

// scanHead looks in buf[line:w] for the end of the head that starts at buf[r], line being the
// start of a line not yet looked at. It returns the head's length and readHead, or
// readHandOff, when it reached a verdict (done), and else the line to go on from.
func (rc *rawConn) scanHead(line int, first bool) (n int, res readResult, next int, done bool) {
	// Between requests net/http waits for 4 bytes (Peek(4)) before it reads a request, and
	// closes quietly when fewer come; decide nothing before that either.
	for first || rc.w-rc.r >= 4 {
		i := bytes.IndexByte(rc.buf[line:rc.w], '\n')
		if i < 0 {
			break
		}
		end := line + i
		if end == line || rc.buf[end-1] != '\r' {
			return 0, readHandOff, line, true
		}
		if end-1 == line {
			if line == rc.r {
				return 0, readHandOff, line, true // an empty request line
			}
			return end + 1 - rc.r, readHead, line, true
		}
		line = end + 1
	}
	return 0, 0, line, false
}

// readHead reads until buf[r:] starts with a whole request head and returns its length.
// Every line must end in CRLF; a bare LF is net/http's business (it accepts it).
func (rc *rawConn) readHead(first bool) (int, readResult) {
	s := rc.s
	line := rc.r    // the start of the line being looked at
	rhtSet := first // the head deadline is set (at accept for the first request)
	for {
		n, res, next, done := rc.scanHead(line, first)
		if done {
			return n, res
		}
		line = next
		if rc.w-rc.r >= s.maxHead {
			return 0, readHandOff
		}
		if rc.w == len(rc.buf) {
			if rc.r > 0 {
				copy(rc.buf, rc.buf[rc.r:rc.w])
			} else {
				nb := make([]byte, min(2*len(rc.buf), s.maxHead))
				copy(nb, rc.buf[:rc.w])
				rc.buf = nb
			}
			line -= rc.r
			rc.w -= rc.r
			rc.r = 0
		}
		if rc.r == rc.w {
			if !first {
				// Between requests: IdleTimeout, as net/http.
				if s.idle > 0 {
					rc.c.SetReadDeadline(time.Now().Add(s.idle))
					rc.deadline = true
				} else if rc.deadline {
					rc.c.SetReadDeadline(time.Time{})
					rc.deadline = false
				}
				rc.state.Store(connIdle)
			}
		} else if !rhtSet {
			// Part of a head is here: ReadHeaderTimeout for the rest. (The common case, a
			// head in one segment, never gets here: that saves a timer update per request.)
			if s.rht > 0 {
				rc.c.SetReadDeadline(time.Now().Add(s.rht))
				rc.deadline = true
			}
			rhtSet = true
		}
		n, err := rc.c.Read(rc.buf[rc.w:])
		rc.state.Store(connHead)
		rc.w += n
		if err != nil && n == 0 {
			// A cut-off request: net/http answers it (but see Peek(4) above).
			if errors.Is(err, io.EOF) && (rc.w-rc.r >= 4 || first && rc.w > rc.r) {
				return 0, readHandOff
			}
			return 0, readClosed
		}
		if err == nil && rc.r == rc.w-n && s.closing.Load() {
			// Shutdown began while this connection waited; net/http would not read on.
			return 0, readClosed
		}
	}
}

// handOff gives the connection, with what has been read of it, to the http.Server. It
// reports whether that server took it.
func (s *Server) handOff(rc *rawConn) bool {
	s.handoffs.Add(1)
	if rc.deadline && s.rht <= 0 {
		rc.c.SetReadDeadline(time.Time{}) // net/http sets none of its own then
	}
	if !rc.wdl.IsZero() {
		rc.c.SetWriteDeadline(time.Time{}) // nor a write deadline before its handler's
	}
	hc := &handedConn{Conn: rc.c, pending: bytes.Clone(rc.buf[rc.r:rc.w]), s: s}
	s.mu.Lock()
	hl := s.hl
	s.mu.Unlock()
	return hl.give(hc)
}

// answer serves the announce or scrape in rc.hd and writes the reply; false when the write
// failed.
func (rc *rawConn) answer(kind int, closeAfter bool) bool {
	start, big, n := rc.compose(kind, closeAfter)
	return rc.send(start, big, n, closeAfter)
}

// compose serves the announce or scrape in rc.hd, logs and measures it, and leaves the reply
// in rc.out: the head and a small body, or the head alone with the body returned in big.
// start is when serving began, n the body's length.
func (rc *rawConn) compose(kind int, closeAfter bool) (start time.Time, big []byte, n int) {
	h, hd := rc.s.h, &rc.hd
	start = time.Now()
	client := rc.peer
	if rc.trusted {
		client = forwardedClient(rc.peer, hd.realIP, hd.xff)
	}
	st := h.pool.Get().(*state)
	var body []byte
	if kind == kindAnnounce {
		body = h.announceReply(st, hd.query, client)
	} else {
		body = h.scrapeReply(st, hd.query)
	}
	h.observe(frontendHTTP, kind, start)
	if h.cfg.AccessLog != nil {
		h.cfg.AccessLog.Log(client, start, "GET", hd.uri, hd.proto, http.StatusOK, len(body), hd.ref, hd.agent)
	}

	rc.out = appendReplyHead(rc.out[:0], hd, len(body), closeAfter)
	if len(body) > rawBufSize {
		rc.st = st // body is st's: send gives it back
		return start, body, len(body)
	}
	rc.out = append(rc.out, body...)
	h.pool.Put(st)
	return start, nil, len(body)
}

// send writes the reply compose left (n: the body's length), within the write timeouts;
// false when that failed.
func (rc *rawConn) send(start time.Time, big []byte, n int, closeAfter bool) bool {
	s, h := rc.s, rc.s.h
	// http.Server.WriteTimeout, when set, bounds each reply, as net/http does. Otherwise
	// Config.WriteTimeout bounds a large reply (as Handler.write does), and a rolling
	// deadline, renewed once it is less than half a WriteTimeout away (no timer update per
	// request), bounds the small ones: a client that sends requests and never reads the
	// replies cannot hold the connection once the socket buffer is full.
	switch wt := h.cfg.WriteTimeout; {
	case s.hs.WriteTimeout > 0:
		rc.setWriteDeadline(start.Add(s.hs.WriteTimeout))
	case wt > 0 && (n > smallReply || rc.wdl.Before(start.Add(wt/2))):
		rc.setWriteDeadline(start.Add(wt))
	}
	var err error
	switch {
	case big != nil:
		bufs := net.Buffers{rc.out, big}
		_, err = bufs.WriteTo(rc.c)
	case closeAfter && rc.r == rc.w:
		// The connection closes next (linger has nothing to drain): reply and FIN together.
		err = writeLast(rc.c, rc.out)
	default:
		_, err = rc.c.Write(rc.out)
	}
	if rc.st != nil {
		h.pool.Put(rc.st)
		rc.st = nil
	}
	return err == nil
}

func (rc *rawConn) setWriteDeadline(t time.Time) {
	rc.c.SetWriteDeadline(t)
	rc.wdl = t
}

// smallReply is the largest body net/http buffers whole and measures itself (its
// bufferBeforeChunkingSize); Handler.write sets Content-Length and a write deadline above it.
const smallReply = 2048

// appendReplyHead appends the status line and headers net/http writes for Handler.write's
// reply of n bytes, in its order: the handler's headers sorted (Content-Length only above
// smallReply), then the ones net/http adds.
func appendReplyHead(b []byte, hd *head, n int, closeAfter bool) []byte {
	if hd.http10 {
		b = append(b, "HTTP/1.0 200 OK\r\n"...)
	} else {
		b = append(b, "HTTP/1.1 200 OK\r\n"...)
	}
	if n > smallReply {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "\r\nContent-Type: text/plain\r\n"...)
	} else {
		b = append(b, "Content-Type: text/plain\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "\r\n"...)
	}
	switch {
	case closeAfter && !hd.http10:
		b = append(b, "Connection: close\r\n"...)
	case !closeAfter && hd.keepAlive10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

// linger ends a connection whose client asked for "Connection: close" but sent more: FIN
// first, then a short bounded drain, so the close does not reset the reply away.
func (rc *rawConn) linger() {
	if rc.r == rc.w {
		return // nothing unread: a plain close sends FIN
	}
	cw, ok := rc.c.(closeWriter)
	if !ok {
		return
	}
	cw.CloseWrite()
	rc.c.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, rc.c, lingerBytes)
}
