package udpapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is how many datagrams one read takes (recvmmsg on Linux) and one write sends
// (sendmmsg).
const batchSize = 32

// batchConn reads and writes datagrams in batches: ipv4.PacketConn and ipv6.PacketConn
// (their Message types are the same type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(c *net.UDPConn) batchConn {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// batch is a worker's buffers for runBatch: a read buffer per datagram, a reply buffer per
// datagram, and the messages over them.
type batch struct {
	rd      []ipv4.Message
	wr      []ipv4.Message
	outs    [][]byte
	actions []int
}

func (s *Server) newBatch(w *worker) *batch {
	b := &batch{
		rd:      make([]ipv4.Message, batchSize),
		wr:      make([]ipv4.Message, batchSize),
		outs:    make([][]byte, batchSize),
		actions: make([]int, batchSize),
	}
	for i := range batchSize {
		b.rd[i].Buffers = [][]byte{make([]byte, s.readLen)}
		b.wr[i].Buffers = make([][]byte, 1)
		b.outs[i] = make([]byte, 0, cap(w.out))
	}
	return b
}

// runBatch is run for a *net.UDPConn: each read takes every datagram waiting (up to
// batchSize) and one write sends their replies, so a busy tracker makes two system calls a
// batch instead of two a datagram, and its worker sleeps only when the socket is empty.
func (s *Server) runBatch(w *worker, conn batchConn) error {
	b := s.newBatch(w)
	var backoff time.Duration
	for {
		n, err := conn.ReadBatch(b.rd, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("udpapi: read: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("udp tracker: read failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			case <-t.C:
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
			m := &b.rd[i]
			b.actions[i] = -1
			src, ok := udpAddrPort(m.Addr)
			if !ok {
				continue // not a UDP peer: nothing BEP 15 can answer
			}
			w.out = b.outs[i][:0] // the reply is built in this datagram's own buffer
			reply, action := w.handle(m.Buffers[0][:m.N], src, now)
			b.outs[i], b.actions[i] = w.out[:0], action
			if len(reply) > 0 {
				b.wr[k].Buffers[0], b.wr[k].Addr = reply, m.Addr
				k++
			}
		}
		for j := 0; j < k; {
			sent, err := conn.WriteBatch(b.wr[j:k], 0)
			if err != nil {
				// This datagram could not go (an ICMP error reported on the socket, a
				// full buffer): count it and send the rest.
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
		for i := range k {
			b.wr[i].Buffers[0], b.wr[i].Addr = nil, nil
		}
	}
}

// udpAddrPort returns a datagram's source as ReadFromUDPAddrPort would.
func udpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	return u.AddrPort(), true
}
