package udpapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one read takes (recvmmsg) and one write sends (sendmmsg).
const batchSize = 32

// batchConn reads and writes a UDP socket's datagrams in batches, with recvmmsg and sendmmsg
// over buffers made once: no allocation per datagram (x/net's batches make two values of
// each source address, and at a million peers that garbage showed in the RSS).
type batchConn struct {
	rc syscall.RawConn
}

// newBatchConn returns c's batchConn, or nil when c's descriptor is not available.
func newBatchConn(c *net.UDPConn) *batchConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return &batchConn{rc: rc}
}

// batch is a worker's buffers for runBatch. Datagram i is read into bufs[i] with its source
// in names[i]; its reply is built in outs[i] and sent back to that same address.
type batch struct {
	rd      []unix.Mmsghdr
	rdIov   []unix.Iovec
	names   []unix.RawSockaddrInet6 // room for either family
	bufs    [][]byte
	wr      []unix.Mmsghdr
	wrIov   []unix.Iovec
	outs    [][]byte
	actions []int

	// The RawConn callbacks and what they report, made once: a closure made per call would
	// escape to the heap, with the variables it sets.
	readFn, writeFn func(fd uintptr) bool
	recv            []unix.Mmsghdr // what readFn fills: rd
	send            []unix.Mmsghdr // what writeFn sends
	n               int
	errno           syscall.Errno
}

func (s *Server) newBatch(w *worker) *batch {
	b := &batch{
		rd:      make([]unix.Mmsghdr, batchSize),
		rdIov:   make([]unix.Iovec, batchSize),
		names:   make([]unix.RawSockaddrInet6, batchSize),
		bufs:    make([][]byte, batchSize),
		wr:      make([]unix.Mmsghdr, batchSize),
		wrIov:   make([]unix.Iovec, batchSize),
		outs:    make([][]byte, batchSize),
		actions: make([]int, batchSize),
	}
	for i := range batchSize {
		b.bufs[i] = make([]byte, s.readLen)
		b.rdIov[i].Base = &b.bufs[i][0]
		b.rdIov[i].SetLen(len(b.bufs[i]))
		h := &b.rd[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.rdIov[i]
		h.SetIovlen(1)
		b.wr[i].Hdr.Iov = &b.wrIov[i]
		b.wr[i].Hdr.SetIovlen(1)
		b.outs[i] = make([]byte, 0, cap(w.out))
	}
	// recvmmsg or sendmmsg on *msgs; EAGAIN has the poller wait for the socket.
	mmsg := func(trap uintptr, msgs *[]unix.Mmsghdr) func(fd uintptr) bool {
		return func(fd uintptr) bool {
			for {
				r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&(*msgs)[0])), uintptr(len(*msgs)), 0, 0, 0)
				switch e {
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				}
				b.n, b.errno = int(r), e
				return true
			}
		}
	}
	b.recv = b.rd
	b.readFn = mmsg(unix.SYS_RECVMMSG, &b.recv)
	b.writeFn = mmsg(unix.SYS_SENDMMSG, &b.send)
	return b
}

// read fills the batch with the datagrams waiting, waiting for one when there are none, and
// returns how many it read.
func (c *batchConn) read(b *batch) (int, error) {
	for i := range b.rd {
		b.rd[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.rd[i].Hdr.Flags = 0
	}
	b.n, b.errno = 0, 0
	if err := c.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", b.errno)
	}
	return b.n, nil
}

// write sends msgs (of b.wr), returning how many went before the first that failed.
func (c *batchConn) write(b *batch, msgs []unix.Mmsghdr) (int, error) {
	b.send, b.n, b.errno = msgs, 0, 0
	err := c.rc.Write(b.writeFn)
	b.send = nil
	if err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", b.errno)
	}
	return b.n, nil
}

// runBatch is run for a *net.UDPConn: each read takes every datagram waiting (up to
// batchSize) and one write sends their replies, so a busy tracker makes two system calls a
// batch instead of two a datagram, and its worker sleeps only when the socket is empty.
func (s *Server) runBatch(w *worker, conn *batchConn) error {
	b := s.newBatch(w)
	var backoff time.Duration
	for {
		n, err := conn.read(b)
		if err != nil {
			if err := s.readFailed(err, &backoff); err != nil {
				return err
			}
			continue
		}
		backoff = 0
		if n > 1 {
			s.batched.Add(int64(n))
		}
		start := time.Now()
		now := start
		if s.now != nil {
			now = s.now()
		}
		k := 0
		for i := range n {
			b.actions[i] = -1
			src, ok := sockaddrAddrPort(&b.names[i], b.rd[i].Hdr.Namelen)
			if !ok {
				continue // not an IP peer: nothing BEP 15 can answer
			}
			w.out = b.outs[i][:0] // the reply is built in this datagram's own buffer
			reply, action := w.handle(b.bufs[i][:b.rd[i].Len], src, now)
			b.outs[i], b.actions[i] = w.out[:0], action
			if len(reply) > 0 {
				h := &b.wr[k].Hdr
				h.Name, h.Namelen = b.rd[i].Hdr.Name, b.rd[i].Hdr.Namelen // back to the sender
				b.wrIov[k].Base = &reply[0]
				b.wrIov[k].SetLen(len(reply))
				k++
			}
		}
		for j := 0; j < k; {
			sent, err := conn.write(b, b.wr[j:k])
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return fmt.Errorf("udpapi: write: %w", err)
				}
				// This datagram could not go (an ICMP error reported on the socket):
				// count it and send the rest.
				s.m.sendErrors.Inc()
				s.cfg.Logger.Debug("udp tracker: send failed", "err", err)
				sent = 1
			}
			j += sent
		}
		d := time.Since(start).Seconds()
		for _, a := range b.actions[:n] {
			if a >= 0 {
				if o := s.m.latency[a]; o != nil {
					o.Observe(d)
				}
			}
		}
	}
}

// sockaddrAddrPort returns the address recvmmsg wrote, as ReadFromUDPAddrPort would (an
// IPv4-mapped address stays mapped; a scope becomes the zone).
func sockaddrAddrPort(rsa *unix.RawSockaddrInet6, n uint32) (netip.AddrPort, bool) {
	port := func(p *uint16) uint16 {
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch {
	case rsa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port(&sa.Port)), true
	case rsa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		a := netip.AddrFrom16(rsa.Addr)
		if rsa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(rsa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port(&rsa.Port)), true
	}
	return netip.AddrPort{}, false
}
