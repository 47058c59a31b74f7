package wsapi

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller keeps the sockets of idle connections in epoll sets instead of a goroutine each.
// It runs a few event loops (one per CPU), each with its own set: a loop waits on its set,
// and for each socket reported reads what it has and serves the whole frames read, itself,
// without handing the connection to another goroutine. A connection belongs to one loop,
// so it has one reader at a time, as it had with a goroutine of its own. Sockets are
// edge-triggered: a loop reads until a read comes back short, and a connection that still
// had data after maxReadsPerWake reads is served again on the loop's next pass.
//
// The frames a pass sends are batched per receiving connection and written when the pass
// ends, one write a connection (conn.write). Serving never waits for a peer: writes that the
// socket does not take at once are queued and written by a goroutine of the connection's
// while it lasts.
type poller struct {
	loops []*loop
	next  atomic.Uint32 // round robin of new connections over loops
	wg    sync.WaitGroup

	mu   sync.RWMutex
	byFD []*conn // the connection of each socket in a set, by descriptor
}

// loop is one event loop: an epoll set and the goroutine waiting on it.
type loop struct {
	p    *poller
	s    *Server
	epfd int
	wake int // an eventfd in the set: written to stop the loop
	// The set itself, in Go's netpoller: the loop waits for it to be readable (some socket
	// of the set reported) as any goroutine waits for a socket, instead of blocking a thread
	// in epoll_wait, which costs the scheduler a hand-off of its processor per wake-up
	// (measured: 4,000 futex calls and 21,000 sleeps of sysmon's per 1,000 announces of
	// BenchmarkAnnounceRelay, against 49 and 285 with a goroutine per connection).
	file *os.File
	rc   syscall.RawConn
	// dirty are the connections whose batch this pass began (conn.write), written when the
	// pass ends; owned by the loop's goroutine.
	dirty []*conn
}

// pollEvents are what a socket is watched for: readable, or its peer gone; edge-triggered.
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// maxReadsPerWake bounds the reads of one connection per pass, so that a peer that sends
// without pause does not keep its loop from the others.
const maxReadsPerWake = 8

// pollWorkers is the number of event loops.
func pollWorkers() int { return runtime.GOMAXPROCS(0) }

func newPoller(s *Server, loops int) (*poller, error) {
	p := &poller{}
	for range max(1, loops) {
		l, err := newLoop(p, s)
		if err != nil {
			for _, l := range p.loops {
				l.closeFDs()
			}
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	p.wg.Add(len(p.loops))
	for _, l := range p.loops {
		go l.run()
	}
	return p, nil
}

func newLoop(p *poller, s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wsapi: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("wsapi: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("wsapi: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("wsapi: epoll: %w", err)
	}
	l := &loop{p: p, s: s, epfd: epfd, wake: wake, file: os.NewFile(uintptr(epfd), "epoll")}
	if l.rc, err = l.file.SyscallConn(); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("wsapi: epoll: %w", err)
	}
	return l, nil
}

func (l *loop) closeFDs() {
	unix.Close(l.wake)
	l.file.Close()
}

// prepare readies c for a set: its socket's descriptor, for reading, writing and the
// set; false: it has none (c is read by a goroutine then). watch then puts it in the set.
func (p *poller) prepare(c *conn) bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return false
	}
	c.fd, c.rc = fd, rc
	c.loop = p.loops[int(p.next.Add(1))%len(p.loops)]
	p.mu.Lock()
	if fd >= len(p.byFD) {
		p.byFD = append(p.byFD, make([]*conn, fd+1-len(p.byFD))...)
	}
	p.byFD[fd] = c
	p.mu.Unlock()
	return true
}

// watch puts c's socket in its loop's set; false: it could not (c is read by a goroutine
// then).
func (p *poller) watch(c *conn) bool {
	if err := unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: pollEvents, Fd: int32(c.fd)}); err != nil {
		p.forget(c)
		c.fd = -1
		return false
	}
	return true
}

// forget takes c's socket out of its set, before its reader closes it.
func (p *poller) forget(c *conn) {
	unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	p.mu.Lock()
	if p.byFD[c.fd] == c {
		p.byFD[c.fd] = nil
	}
	p.mu.Unlock()
}

// run serves the connections of l's set until close.
func (l *loop) run() {
	defer l.p.wg.Done()
	events := make([]unix.EpollEvent, 256)
	var again, next []*conn // connections that had more to read than one pass reads
	var n int
	var err error
	poll := func(uintptr) bool {
		n, err = unix.EpollWait(l.epfd, events, 0)
		if errors.Is(err, unix.EINTR) {
			n, err = 0, nil
		}
		// false: nothing to do, wait until the set is readable.
		return n > 0 || err != nil || len(again) > 0
	}
	for {
		if rerr := l.rc.Read(poll); rerr != nil {
			err = rerr
		}
		if err != nil {
			l.s.cfg.Logger.Error("wsapi: epoll_wait", "err", err)
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == l.wake {
				return
			}
			l.p.mu.RLock()
			var c *conn
			if fd < len(l.p.byFD) {
				c = l.p.byFD[fd]
			}
			l.p.mu.RUnlock()
			if c != nil && l.serve(c) {
				next = append(next, c)
			}
		}
		for _, c := range again {
			if l.serve(c) {
				next = append(next, c)
			}
		}
		clear(again)
		again, next = next, again[:0]
		l.flushBatches()
	}
}

// batched records that c's batch was begun in this pass.
func (l *loop) batched(c *conn) { l.dirty = append(l.dirty, c) }

// flushBatches ends a pass: each connection sent to gets what the pass sent it in one write.
func (l *loop) flushBatches() {
	for _, c := range l.dirty {
		c.flushBatch()
	}
	clear(l.dirty)
	l.dirty = l.dirty[:0]
}

// serve reads what c's socket has and serves it; true: there may be more to read.
func (l *loop) serve(c *conn) bool {
	if c.finished {
		return false
	}
	for range maxReadsPerWake {
		more, end := c.readOnce()
		if end != "" {
			c.finish(end)
			return false
		}
		if !more {
			return false
		}
	}
	return true
}

// readSome reads into b: from the socket itself for a connection in a set (errAgain when it
// has nothing), through net.Conn otherwise.
func (c *conn) readSome(b []byte) (int, error) {
	if c.fd < 0 {
		return c.nc.Read(b)
	}
	for {
		n, err := unix.Read(c.fd, b)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, errAgain
		}
		return 0, err
	}
}

// writeNow writes b with one system call, without waiting; n < len(b) with a nil error:
// the socket took no more.
func (c *conn) writeNow(b []byte) (n int, err error) {
	cerr := c.rc.Write(func(fd uintptr) bool {
		for {
			n, err = unix.Write(int(fd), b)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				n, err = 0, nil
			}
			n = max(n, 0)
			return true
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}

// shutdownFD shuts c's socket down for reading and writing.
func (c *conn) shutdownFD() {
	c.rc.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
}

// close stops the loops; every connection has finished.
func (p *poller) close() {
	var one [8]byte
	one[0] = 1
	for _, l := range p.loops {
		unix.Write(l.wake, one[:])
	}
	p.wg.Wait()
	for _, l := range p.loops {
		l.closeFDs()
	}
}
