package announce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

func netipAddrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// natChecker connects back to new peers (bttrack's NAT check): a peer is handed out only once
// a BitTorrent handshake with it completed, so firewalled peers do not waste others' time.
// A bounded queue feeds a fixed pool of workers; each peer gets up to cfg.NATCheck attempts,
// one per announce, and a bounded memory of attempts.
type natChecker struct {
	cfg     Config
	store   swarm.Store
	metrics *Metrics
	queue   chan natJob
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	inflight map[natKey]bool
	tries    map[natKey]int
}

type natKey struct {
	ih   bittorrent.InfoHash
	id   bittorrent.PeerID
	addr netip.AddrPort
}

type natJob struct{ natKey }

const natMemory = 100_000 // attempts remembered before the table is cleared

func newNATChecker(cfg Config, store swarm.Store, metrics *Metrics) *natChecker {
	ctx, cancel := context.WithCancel(context.Background())
	n := &natChecker{
		cfg: cfg, store: store, metrics: metrics,
		queue: make(chan natJob, cfg.NATQueue), ctx: ctx, cancel: cancel,
		inflight: map[natKey]bool{}, tries: map[natKey]int{},
	}
	for range cfg.NATWorkers {
		n.wg.Add(1)
		go n.worker()
	}
	return n
}

func (n *natChecker) close() {
	n.cancel()
	n.wg.Wait()
}

func (n *natChecker) enqueue(ih bittorrent.InfoHash, id bittorrent.PeerID, addr netip.AddrPort) {
	k := natKey{ih, id, addr}
	n.mu.Lock()
	if n.inflight[k] || n.tries[k] >= n.cfg.NATCheck {
		n.mu.Unlock()
		return
	}
	if len(n.tries) >= natMemory {
		clear(n.tries)
	}
	n.inflight[k] = true
	n.tries[k]++
	n.mu.Unlock()
	select {
	case n.queue <- natJob{k}:
	default:
		n.metrics.natChecks.WithLabelValues("queue_full").Inc()
		n.mu.Lock()
		delete(n.inflight, k)
		n.tries[k]--
		n.mu.Unlock()
	}
}

func (n *natChecker) worker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case j := <-n.queue:
			err := n.check(j.natKey)
			n.mu.Lock()
			delete(n.inflight, j.natKey)
			if err == nil {
				delete(n.tries, j.natKey)
			}
			n.mu.Unlock()
			if err == nil {
				n.store.Reveal(j.ih, j.id, j.addr)
				n.metrics.natChecks.WithLabelValues("ok").Inc()
			} else if n.ctx.Err() == nil {
				n.metrics.natChecks.WithLabelValues("failed").Inc()
				n.cfg.Logger.Debug("NAT check failed", "addr", j.addr, "err", err)
			}
		}
	}
}

// check dials the peer and exchanges BitTorrent handshakes (BEP 3): the peer must answer for
// the same info-hash, and with the peer ID it announced (bttrack's rule).
func (n *natChecker) check(k natKey) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.NATTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", k.addr.String())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	var hs [68]byte
	hs[0] = 19
	copy(hs[1:], "BitTorrent protocol")
	copy(hs[28:], k.ih[:])
	copy(hs[48:], "-WS0001-natcheck0000")
	if _, err := conn.Write(hs[:]); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	var got [68]byte
	if _, err := io.ReadFull(conn, got[:]); err != nil {
		return fmt.Errorf("read handshake: %w", err)
	}
	if !bytes.Equal(got[:20], hs[:20]) {
		return fmt.Errorf("not a BitTorrent handshake")
	}
	if !bytes.Equal(got[28:48], k.ih[:]) {
		return fmt.Errorf("peer answered for another torrent")
	}
	if !bytes.Equal(got[48:68], k.id[:]) {
		return fmt.Errorf("peer answered with another peer ID")
	}
	return nil
}

// pendingNAT reports how many checks are queued or running (for tests and stats).
func (n *natChecker) pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.inflight)
}
