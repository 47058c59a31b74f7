package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Inline serving, on Linux. A "Connection: close" announce — every announce when the web
// server in front proxies with HTTP/1.0, as nginx does by default — is accepted, read,
// answered and closed by the goroutine that accepts it, with four system calls (accept4,
// read, sendmsg, close) and nothing else: no goroutine, netpoll registration, deadline
// timer, TCP_NODELAY or getsockname per connection. The listener has TCP_DEFER_ACCEPT
// (nginx's "deferred", Apache's default on Linux), so a connection is accepted when its
// first bytes are in and the read does not wait. Anything else — a head not all there, a
// keep-alive request, another route, a reply over 4 KiB, a full socket buffer — moves the
// connection, with what was read of it, to serveConn on its own goroutine, as if it had
// been accepted there.

// acceptBatch bounds the connections one accepting goroutine serves before it looks at its
// listener's state again (Shutdown closes it).
const acceptBatch = 64

// deferAcceptSeconds is the listener's TCP_DEFER_ACCEPT: a connection that sends nothing is
// accepted anyway after about this long (and then timed out by ReadHeaderTimeout), as with
// nginx's "listen … deferred".
const deferAcceptSeconds = 1

// serveInline accepts and serves l's connections with one goroutine per P (the first one
// the caller's), each waiting on its own duplicate of the listening socket (a net.Listener's
// RawConn cannot wait for reads; an os.File's can). It reports false, having done nothing,
// when l cannot be served so.
func (s *Server) serveInline(l *net.TCPListener) (bool, error) {
	raw, err := l.SyscallConn()
	if err != nil {
		return false, nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, deferAcceptSeconds)
	}); err != nil {
		return false, nil
	}
	if serr != nil {
		// Still correct: each connection's first read waits on a goroutine instead.
		s.h.cfg.Logger.Warn("HTTP listener: TCP_DEFER_ACCEPT", "err", serr)
	}
	var dups []*os.File
	for range max(runtime.GOMAXPROCS(0), 1) {
		f, err := l.File()
		if err != nil {
			if len(dups) == 0 {
				return false, nil
			}
			s.h.cfg.Logger.Warn("HTTP listener: one accepting goroutine fewer", "err", err)
			break
		}
		dups = append(dups, f)
	}
	s.mu.Lock()
	for _, f := range dups {
		s.extra = append(s.extra, f)
	}
	if s.closing.Load() {
		for _, f := range dups {
			f.Close()
		}
	}
	s.wg.Add(len(dups) - 1)
	s.mu.Unlock()
	for _, f := range dups[1:] {
		go func() {
			defer s.wg.Done()
			if err := s.acceptLoop(f); !errors.Is(err, http.ErrServerClosed) {
				s.h.cfg.Logger.Error("HTTP accept", "err", err)
			}
		}()
	}
	err = s.acceptLoop(dups[0])
	if !errors.Is(err, http.ErrServerClosed) {
		// Serve fails: its caller sees the error; the other loops end with their sockets.
		for _, f := range dups {
			f.Close()
		}
	}
	return true, err
}

// acceptLoop accepts connections on the listening socket l and serves each (serveFD) until
// l is closed.
func (s *Server) acceptLoop(l *os.File) error {
	raw, err := l.SyscallConn()
	if err != nil {
		return fmt.Errorf("httpapi: listener: %w", err)
	}
	var delay time.Duration
	var aerr error
	// One callback for the loop's life: a closure made per Read would escape, with aerr.
	accept := func(lfd uintptr) bool {
		for range acceptBatch {
			fd, sa, err := syscall.Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch {
			case err == nil:
				s.serveFD(fd, sa)
			case errors.Is(err, syscall.EAGAIN):
				return false // wait for the next connection
			case errors.Is(err, syscall.EINTR), retryAccept(err):
			default:
				aerr = err
				return true
			}
		}
		return true
	}
	for {
		aerr = nil
		err := raw.Read(accept)
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			return fmt.Errorf("httpapi: accept: %w", err)
		}
		if aerr == nil {
			delay = 0
			continue
		}
		if s.closing.Load() {
			return http.ErrServerClosed
		}
		var errno syscall.Errno
		if !errors.As(aerr, &errno) || !errno.Temporary() {
			return fmt.Errorf("httpapi: accept: %w", os.NewSyscallError("accept4", aerr))
		}
		if delay = acceptDelay(delay); !s.acceptPause(os.NewSyscallError("accept4", aerr), delay) {
			return http.ErrServerClosed
		}
	}
}

// retryAccept reports whether accept4 failed for this one connection only: it was aborted
// before it was accepted, or one of the network errors accept(2) passes on.
func retryAccept(err error) bool {
	switch {
	case errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPROTO),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.ENOPROTOOPT),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENONET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EOPNOTSUPP),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	return false
}

// serveFD serves a connection just accepted: whole when its first read holds a complete
// "Connection: close" announce or scrape; otherwise it moves the connection to serveConn.
func (s *Server) serveFD(fd int, sa syscall.Sockaddr) {
	if !s.admit() {
		syscall.Close(fd)
		s.gone()
		return
	}
	rc := s.pool.Get().(*rawConn)
	rc.setPeer(sockaddrAddr(sa))
	n, err := readFD(fd, rc.buf)
	switch {
	case n > 0:
		rc.w = n
	case errors.Is(err, syscall.EAGAIN):
		s.adopt(rc, fd) // nothing yet: wait on a goroutine
		return
	default:
		// Closed or reset before a byte came: net/http closes quietly too.
		syscall.Close(fd)
		s.gone()
		rc.reset()
		return
	}
	hn, res, _, done := rc.scanHead(0, true)
	if !done || res != readHead {
		s.adopt(rc, fd) // serveConn reads on, or hands over
		return
	}
	kind := rc.route(hn)
	if kind == kindOther || hn != rc.w || !(rc.hd.close || s.closing.Load()) {
		// net/http's, more input behind it, or a connection kept alive: serveConn parses
		// the head again and goes on from there.
		rc.hd = head{}
		s.adopt(rc, fd)
		return
	}
	rc.r = hn
	start, big, bn := rc.compose(kind, true)
	if big == nil {
		sent, err := sendMore(fd, rc.out)
		switch {
		case err == nil && sent == len(rc.out):
			// close sends the reply, held back by MSG_MORE, with the FIN.
			s.inlined.Add(1)
			syscall.Close(fd)
			s.gone()
			rc.reset()
			return
		case err != nil && !errors.Is(err, syscall.EAGAIN):
			syscall.Close(fd) // the client is gone
			s.gone()
			rc.reset()
			return
		}
		rc.out = rc.out[:copy(rc.out, rc.out[sent:])]
	}
	// The rest waits for the socket: serveConn writes it, within the write timeout.
	rc.pending = pendingReply{start: start, big: big, n: bn, ok: true}
	s.adopt(rc, fd)
}

// adopt moves a connection served inline, with all rc holds of it, to serveConn.
func (s *Server) adopt(rc *rawConn, fd int) {
	f := os.NewFile(uintptr(fd), "")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		// Out of file descriptors: the client sees its connection closed.
		s.h.cfg.Logger.Debug("HTTP connection dropped", "err", err)
		s.gone()
		rc.reset()
		return
	}
	rc.c = c
	if s.track(rc) {
		// Part of a request is in, or a reply is left to write: Shutdown waits for it. Only
		// a reply makes it not the cap's to close (conncap.go).
		if rc.pending.ok {
			rc.state.Store(connActive)
		} else if rc.w > 0 {
			rc.state.Store(connHead)
		}
		go s.serveConn(rc)
	}
}

// readFD reads fd once, retrying an interrupted read.
func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// sendMore sends p on fd with MSG_MORE (see writeLast) until it is all sent or the socket
// buffer is full (EAGAIN), and returns how much went.
func sendMore(fd int, p []byte) (int, error) {
	sent := 0
	for sent < len(p) {
		n, err := syscall.SendmsgN(fd, p[sent:], nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, nil
}

// sockaddrAddr returns the address of an accepted connection's peer, as peerAddr reads it
// from a net.Conn (IPv4-mapped IPv6 unmapped, the zone an interface name).
func sockaddrAddr(sa syscall.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *syscall.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr).Unmap()
		if a.ZoneId != 0 && ip.Is6() {
			zone := strconv.Itoa(int(a.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		return ip
	}
	return netip.Addr{}
}
