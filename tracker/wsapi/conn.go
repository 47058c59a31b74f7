package wsapi

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// pingWait bounds writing a ping or a close frame: a peer whose socket takes none of it is
// stuck.
const pingWait = 2 * time.Second

// readChunk is the room a read is given at least: a browser's announce with its offers is
// 3–4 KB.
const readChunk = 8 << 10

// Why a connection was ended by the tracker rather than its peer (conn.why).
const (
	endNone uint32 = iota
	endStuck
	endIdle
	endShutdown
)

// errAgain is a read that found nothing: the socket is drained.
var errAgain = errors.New("no data")

// conn is one WebSocket connection. While idle it holds its socket, its peers and a few
// words; the bytes of a partial frame, or of a message in fragments, only while partial.
type conn struct {
	s       *Server
	nc      net.Conn
	key     netip.Prefix    // what MaxConnsPerIP counts it by
	fd      int             // its socket in the poller; -1: read by a goroutine of its own
	rc      syscall.RawConn // its socket, for writes, when in the poller
	loop    *loop           // its event loop, when in the poller
	wmu     sync.Mutex      // one writer at a time; guards out and batch
	out     *[]byte         // frames the socket did not take at once, being flushed (flush)
	batch   *[]byte         // frames of an event loop's pass, written when it ends (write)
	dead    atomic.Bool     // closing: write nothing more
	why     atomic.Uint32
	seen    atomic.Int64 // UnixNano of its last message or pong (IdleTimeout)
	pending atomic.Int32 // its offers waiting for an answer

	// Owned by its reader (one at a time: the poller hands a connection to one worker):
	members  map[bittorrent.InfoHash]*member
	bad      int
	buf      []byte  // the messages written while one is served, from Server.bufs
	in       *[]byte // bytes read that do not make a whole frame yet, from Server.bufs
	frag     *[]byte // the fragments of a message so far, from Server.bufs
	fs       frameState
	finished bool // finish has run
}

// end records why the tracker ends c, before it closes it; the first reason stays.
func (c *conn) end(why uint32) { c.why.CompareAndSwap(endNone, why) }

// reason is the closed_total label for a connection whose reader stopped with def.
func (c *conn) reason(def string) string {
	switch c.why.Load() {
	case endStuck:
		return closedStuck
	case endIdle:
		return closedIdle
	case endShutdown:
		return closedShutdown
	}
	return def
}

// send writes one text message now; a peer that does not take it within WriteTimeout is
// closed.
func (c *conn) send(b []byte) { c.write(opText, b, c.s.cfg.WriteTimeout, false, nil) }

// sendTo writes one text message to peer to while c's message is served: from an event
// loop, it joins to's batch, written when the loop's pass ends (see write); otherwise it is
// written now.
func (c *conn) sendTo(to *conn, b []byte) {
	to.write(opText, b, c.s.cfg.WriteTimeout, false, c.pass())
}

// pass is the event loop serving c's messages, whose pass batches what they send; nil for a
// connection read by a goroutine of its own.
func (c *conn) pass() *loop {
	if c.fd < 0 {
		return nil
	}
	return c.loop
}

// ping sends a ping, unless a message is being written to c (which either succeeds, and the
// peer is alive, or ends it).
func (c *conn) ping() { c.write(opPing, nil, pingWait, true, nil) }

// maxBatch is the size at which a batch is written before its pass ends.
const maxBatch = 32 << 10

// write writes one frame, waiting at most wait; a failed write closes c.
//
// With pass, an event loop in the middle of a pass, the frame joins c's batch instead: the
// frames sent to c during the pass (a reply, answers from several peers), written with one
// system call when the pass ends (loop.flushBatches) or once the batch holds maxBatch bytes.
// A frame written without a pass goes out at once with the batch before it, so the frames
// to a peer keep their order.
//
// A connection in the poller is written without waiting, so that an event loop never waits
// for a peer: what the socket does not take at once is queued (up to maxQueued bytes, over
// which the peer is stuck) and written by flush, a goroutine that lasts while the queue does.
func (c *conn) write(op byte, p []byte, wait time.Duration, try bool, pass *loop) {
	if c.dead.Load() {
		return
	}
	if try {
		if !c.wmu.TryLock() {
			return
		}
	} else {
		c.wmu.Lock()
	}
	if c.out != nil { // c.batch is nil: a batch goes to the queue when one is running
		if len(*c.out)+len(p) > c.s.maxQueued() {
			c.wmu.Unlock()
			c.end(endStuck)
			c.kill(nil)
			return
		}
		*c.out = append(appendFrameHeader(*c.out, op, len(p)), p...)
		c.wmu.Unlock()
		c.s.m.queued.Inc()
		return
	}
	if c.batch == nil {
		c.batch = c.s.getBuf()
		if pass != nil {
			pass.batched(c)
		}
	}
	*c.batch = append(appendFrameHeader(*c.batch, op, len(p)), p...)
	if pass != nil && len(*c.batch) < maxBatch {
		c.wmu.Unlock()
		return
	}
	c.writeBatch(wait)
}

// writeBatch writes c.batch, c.wmu held, and unlocks it. What the socket does not take at
// once becomes the queue that flush writes, within wait.
func (c *conn) writeBatch(wait time.Duration) {
	wb := c.batch
	c.batch = nil
	b := *wb
	var n int
	var err error
	c.s.m.writes.Inc()
	if c.rc != nil {
		if n, err = c.writeNow(b); err == nil && n < len(b) {
			*wb = b[:copy(b, b[n:])]
			c.out = wb
			c.wmu.Unlock()
			c.s.m.queued.Inc()
			go c.flush(wait)
			return
		}
	} else {
		c.nc.SetWriteDeadline(time.Now().Add(wait))
		_, err = c.nc.Write(b)
	}
	c.wmu.Unlock()
	c.s.putBuf(wb)
	if err != nil {
		c.kill(err)
	}
}

// flushBatch writes what the frames of a pass left in c.batch; nothing to a connection
// that has ended since.
func (c *conn) flushBatch() {
	c.wmu.Lock()
	switch {
	case c.batch == nil: // written already: full, or by a write without a pass
		c.wmu.Unlock()
	case c.dead.Load():
		b := c.batch
		c.batch = nil
		c.wmu.Unlock()
		c.s.putBuf(b)
	default:
		c.writeBatch(c.s.cfg.WriteTimeout)
	}
}

// flush writes c's queue until it is empty, each part within wait.
func (c *conn) flush(wait time.Duration) {
	for {
		c.wmu.Lock()
		b := c.out
		if len(*b) == 0 || c.dead.Load() {
			c.out = nil
			c.wmu.Unlock()
			c.s.putBuf(b)
			return
		}
		c.out = c.s.getBuf()
		c.wmu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(wait))
		_, err := c.nc.Write(*b)
		c.s.putBuf(b)
		if err != nil {
			c.kill(err)
		}
	}
}

// maxQueued bounds the bytes queued for a peer that does not read as fast as it is sent to.
func (s *Server) maxQueued() int { return int(4 * s.cfg.MaxMessage) }

// kill ends c after a failed write; its reader then cleans up.
func (c *conn) kill(err error) {
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		c.end(endStuck)
	}
	c.dead.Store(true)
	c.shutdown()
}

// closeWith sends a close frame and ends the connection; its reader then cleans up.
func (c *conn) closeWith(code int, text string) {
	c.write(opClose, closeMessage(code, text), pingWait, false, nil)
	c.dead.Store(true)
	c.shutdown()
}

// shutdown shuts the socket down without closing it, which wakes its reader (a read finds
// the end of the stream, and the poller reports it readable); the reader closes it.
func (c *conn) shutdown() {
	if c.rc != nil {
		c.shutdownFD()
		return
	}
	if tc, ok := c.nc.(interface {
		CloseRead() error
		CloseWrite() error
	}); ok {
		tc.CloseWrite()
		tc.CloseRead()
		return
	}
	c.nc.Close()
}

// readLoop is the reader of a connection the poller does not watch: a goroutine blocked in
// a read. It returns when the connection has ended.
func (c *conn) readLoop() {
	var first [1]byte
	for {
		if c.in == nil {
			// Wait for the peer's next frame holding no buffer of the pool: the first byte
			// alone, then the rest with room.
			n, err := c.nc.Read(first[:])
			if err != nil || n == 0 {
				c.finish(c.reason(closedClient))
				return
			}
			c.in = c.s.getBuf()
			*c.in = append((*c.in)[:0], first[0])
		}
		if _, end := c.readOnce(); end != "" {
			c.finish(end)
			return
		}
	}
}

// readOnce reads once (readSome, with at least readChunk bytes of room) and serves the
// whole frames read. more says the read filled its room (there may be more to read at
// once); end is why the connection ended, "" while it goes on.
func (c *conn) readOnce() (more bool, end string) {
	in := c.in
	if in == nil {
		in = c.s.getBuf()
	}
	b := *in
	if cap(b)-len(b) < readChunk {
		b = append(b[:cap(b)], make([]byte, readChunk)...)[:len(b)]
	}
	n, err := c.readSome(b[len(b):cap(b)])
	if n > 0 {
		more = len(b)+n == cap(b)
		b = b[:len(b)+n]
		var used int
		used, end = c.serveFrames(b)
		b = b[:copy(b, b[used:])]
	}
	*in = b
	if len(b) == 0 {
		c.in = nil
		c.s.putBuf(in)
	} else {
		c.in = in
	}
	switch {
	case end != "":
		return false, end
	case err == errAgain:
		return false, ""
	case err != nil || n == 0: // the end of the stream, or a broken socket
		return false, c.reason(closedClient)
	}
	return more, ""
}

// serveFrames serves the whole frames at the start of b and returns their length, and why
// the connection ended, if it did.
func (c *conn) serveFrames(b []byte) (used int, end string) {
	for {
		if c.dead.Load() {
			return used, c.reason(closedClient)
		}
		f, n, err := c.fs.next(b[used:], c.s.cfg.MaxMessage)
		if err != nil {
			var pe protocolError
			if errors.As(err, &pe) {
				c.closeWith(closeProtocolError, string(pe))
				return used, closedClient
			}
			c.closeWith(closeTooBig, "message too large")
			return used, closedTooLarge
		}
		if n == 0 {
			return used, ""
		}
		used += n
		switch f.op {
		case opPing:
			c.write(opPong, f.payload, pingWait, false, c.pass())
		case opPong:
			c.seen.Store(time.Now().UnixNano())
		case opClose:
			code, _, err := closePayload(f.payload)
			if err != nil {
				c.closeWith(closeProtocolError, string(err.(protocolError)))
			} else {
				c.closeWith(code, "")
			}
			return used, closedClient
		case opText, opBinary:
			if f.fin {
				end = c.message(f.op, f.payload)
			} else {
				c.frag = c.s.getBuf()
				*c.frag = append(*c.frag, f.payload...)
			}
		case opContinuation:
			*c.frag = append(*c.frag, f.payload...)
			if f.fin {
				end = c.message(c.fs.op, *c.frag)
				c.s.putBuf(c.frag)
				c.frag = nil
			}
		}
		if end != "" {
			return used, end
		}
	}
}

// message serves one whole message.
func (c *conn) message(op byte, data []byte) (end string) {
	c.seen.Store(time.Now().UnixNano())
	wb := c.s.getBuf()
	c.buf = *wb
	if op != opText {
		c.refuse(rejBinary, "", nil, "binary messages are not accepted: send JSON text")
	} else {
		c.handle(data)
	}
	*wb, c.buf = c.buf, nil
	c.s.putBuf(wb)
	if c.bad >= c.s.cfg.MaxBadMessages {
		c.closeWith(closePolicyViolated, "too many malformed messages")
		return closedAbuse
	}
	return ""
}

// finish is the end of a connection, called once by its reader: it closes the socket,
// removes the connection's peers and gives back what it held.
func (c *conn) finish(reason string) {
	c.finished = true
	c.dead.Store(true)
	for _, b := range []*[]byte{c.in, c.frag} {
		if b != nil {
			c.s.putBuf(b)
		}
	}
	c.in, c.frag = nil, nil
	if c.fd >= 0 {
		c.s.poll.forget(c)
	}
	c.nc.Close()
	s := c.s
	s.mu.Lock()
	delete(s.conns, c)
	if s.closing {
		reason = closedShutdown
	}
	s.mu.Unlock()
	c.leave()
	s.m.closed.WithLabelValues(reason).Inc()
	s.release(c.key)
}
