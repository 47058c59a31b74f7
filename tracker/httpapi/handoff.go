package httpapi

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// handoffListener is the net.Listener the fast path's http.Server serves: Accept returns the
// connections the fast path gives up on, each with the bytes it has already read.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

var _ net.Listener = (*handoffListener)(nil)

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// give passes c to whoever Accepts; after Close it closes c and reports false.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		c.Close()
		return false
	}
}

// Accept implements net.Listener.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: Accept and give stop waiting.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener: the real listener's address.
func (l *handoffListener) Addr() net.Addr { return l.addr }

// handedConn is a connection the fast path handed over: Read returns the bytes the fast path
// had read (the request it did not answer, and whatever followed) before reading the socket.
// Everything else is the socket's.
type handedConn struct {
	net.Conn
	pending []byte
	s       *Server     // counts it gone when closed
	closed  atomic.Bool // net/http may close a connection more than once
}

// Close implements net.Conn.
func (c *handedConn) Close() error {
	if !c.closed.Swap(true) {
		c.s.gone()
	}
	return c.Conn.Close()
}

// Read implements net.Conn.
func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil // a connection kept for long (a WebSocket) does not keep the copy
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// closeWriter is implemented by *net.TCPConn and *net.UnixConn.
type closeWriter interface{ CloseWrite() error }

// CloseWrite shuts the sending side down, so net/http can end a connection with unread input
// gracefully (it looks for this method) as it does on its own sockets.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn gives the socket to a reader that waits on it itself (the WebSocket tracker
// keeps idle connections in epoll sets), once the bytes read ahead have been read through
// Read: reading the socket directly would skip them.
func (c *handedConn) SyscallConn() (syscall.RawConn, error) {
	if len(c.pending) > 0 {
		return nil, errors.New("httpapi: connection has bytes read ahead")
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("httpapi: connection has no socket")
	}
	return sc.SyscallConn()
}
