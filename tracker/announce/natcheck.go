package announce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

func netipAddrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// natChecker connects back to new peers (bttrack's NAT check): a new peer is handed out once
// its port accepted a connection from the tracker, so firewalled peers do not waste others'
// time. A bounded queue feeds a fixed pool of workers; each check key gets up to
// cfg.NATCheck attempts, one per announce, and a bounded memory of attempts.
//
// By default a check is a TCP connect, closed without a byte sent. A BitTorrent handshake
// (bttrack's check, cfg.NATHandshake) names the info-hash, and a client that allows one
// connection per IP (libtorrent's default, so qBittorrent's and Deluge's) then counts the
// tracker's connection as a second one from the address of a seeder on the tracker's host:
// it drops one of them and waits a minute before it reconnects to that seeder. A bare
// connect proves the same reachability and is never attached to a torrent. Its key is the
// address alone, so one check (and, for a while, its result) serves every torrent and peer
// ID announced from that address.
//
// The checker never hides a peer because it is busy: a peer it cannot take (the queue is
// full, or its source already has cfg.NATPerIP checks pending) is handed out unchecked, as
// with NAT checking off. Hiding it instead would let one client that floods the queue hide
// every other new peer; handing it out costs at most what --nat_check 0 costs. The per-source
// bound keeps one source from filling the queue and the workers, so other sources' peers
// are still checked promptly.
type natChecker struct {
	cfg     Config
	store   swarm.Store
	metrics *Metrics
	queue   chan natKey
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu        sync.Mutex
	checks    map[natKey][]natTarget // checks queued or running, and the peers waiting on each
	waiting   int                    // peers in checks, bounded by cfg.NATQueue
	perSource map[netip.Addr]int     // checks pending per source (IPv4 address, IPv6 /64)
	tries     map[natKey]natTries    // attempts that have not succeeded
	reachable map[natKey]time.Time   // connect mode: addresses that accepted, and when
}

// natTarget is a peer to reveal once its check succeeds.
type natTarget struct {
	ih   bittorrent.InfoHash
	id   bittorrent.PeerID
	addr netip.AddrPort
}

// natTries counts the failed attempts of a key since the first of them. They are forgotten
// an announce interval after it: a peer given up on (its port was closed) is tried again
// once its owner had time to open it, even from the same address.
type natTries struct {
	n     int
	since time.Time
}

// natKey is what one check proves: the address (connect mode), or the address answering
// for the info-hash with the peer ID (handshake mode).
type natKey natTarget

const (
	natMemory         = 100_000 // attempts (and reachable addresses) remembered before a table is cleared
	natIPv6SourceBits = 64      // an IPv6 source is its /64: one host can use every address in it
)

func newNATChecker(cfg Config, store swarm.Store, metrics *Metrics) *natChecker {
	ctx, cancel := context.WithCancel(context.Background())
	n := &natChecker{
		cfg: cfg, store: store, metrics: metrics,
		queue: make(chan natKey, cfg.NATQueue), ctx: ctx, cancel: cancel,
		checks: map[natKey][]natTarget{}, perSource: map[netip.Addr]int{},
		tries: map[natKey]natTries{}, reachable: map[natKey]time.Time{},
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

func (n *natChecker) keyOf(p natTarget) natKey {
	if n.cfg.NATHandshake {
		return natKey(p)
	}
	return natKey{addr: p.addr}
}

// natSource is the key of per-source fairness: an IPv4 address or an IPv6 /64.
func natSource(a netip.AddrPort) netip.Addr {
	return sourceKey(a.Addr(), 32, natIPv6SourceBits)
}

// enqueue arranges for the new hidden peer p to be checked, or revealed without a check.
func (n *natChecker) enqueue(ih bittorrent.InfoHash, id bittorrent.PeerID, addr netip.AddrPort) {
	p := natTarget{ih, id, addr}
	k := n.keyOf(p)
	src := natSource(addr)
	n.mu.Lock()
	if w, ok := n.checks[k]; ok {
		// A check of this key is under way: wait for its result.
		if n.cfg.NATHandshake {
			n.mu.Unlock() // the same peer again: already waiting
			return
		}
		if n.waiting >= n.cfg.NATQueue {
			n.mu.Unlock()
			n.unchecked(p, natQueueFull)
			return
		}
		n.checks[k] = append(w, p)
		n.waiting++
		n.metrics.natPending.Set(float64(n.waiting))
		n.mu.Unlock()
		return
	}
	now := time.Now()
	if at, ok := n.reachable[k]; ok && now.Sub(at) < n.cfg.Interval {
		n.mu.Unlock()
		n.store.Reveal(p.ih, p.id, p.addr)
		n.metrics.natResult[natCached].Inc()
		return
	}
	tries := n.tries[k]
	if now.Sub(tries.since) >= n.cfg.Interval {
		tries = natTries{since: now}
	}
	if tries.n >= n.cfg.NATCheck {
		n.mu.Unlock() // given up on for now: stays hidden, as bttrack did
		return
	}
	reason := -1
	switch {
	case n.perSource[src] >= n.cfg.NATPerIP:
		reason = natSourceBusy
	case n.waiting >= n.cfg.NATQueue:
		reason = natQueueFull
	}
	if reason >= 0 {
		n.mu.Unlock()
		n.unchecked(p, reason)
		return
	}
	if len(n.tries) >= natMemory {
		clear(n.tries)
	}
	tries.n++
	n.tries[k] = tries
	n.checks[k] = []natTarget{p}
	n.waiting++
	n.perSource[src]++
	n.metrics.natPending.Set(float64(n.waiting))
	// Never blocks: every queued key is in checks, and waiting < NATQueue = cap(queue).
	n.queue <- k
	n.mu.Unlock()
}

// unchecked hands p out without a check (see natChecker) and counts why.
func (n *natChecker) unchecked(p natTarget, reason int) {
	n.store.Reveal(p.ih, p.id, p.addr)
	n.metrics.natResult[reason].Inc()
}

func (n *natChecker) worker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case k := <-n.queue:
			err := n.check(k)
			n.finish(k, err)
		}
	}
}

// finish records the result of the check of k and reveals the peers waiting on it if it
// succeeded.
func (n *natChecker) finish(k natKey, err error) {
	src := natSource(k.addr)
	n.mu.Lock()
	peers := n.checks[k]
	delete(n.checks, k)
	n.waiting -= len(peers)
	if n.perSource[src]--; n.perSource[src] <= 0 {
		delete(n.perSource, src)
	}
	if err == nil {
		delete(n.tries, k)
		if !n.cfg.NATHandshake {
			if len(n.reachable) >= natMemory {
				clear(n.reachable)
			}
			n.reachable[k] = time.Now()
		}
	}
	n.metrics.natPending.Set(float64(n.waiting))
	n.mu.Unlock()
	switch {
	case err == nil:
		for _, p := range peers {
			n.store.Reveal(p.ih, p.id, p.addr)
		}
		n.metrics.natResult[natOK].Inc()
	case n.ctx.Err() == nil:
		n.metrics.natResult[natFailed].Inc()
		n.cfg.Logger.Debug("NAT check failed", "addr", k.addr, "err", err)
	}
}

// check connects to the peer. In handshake mode it also exchanges BitTorrent handshakes
// (BEP 3): the peer must answer for the same info-hash, and with the peer ID it announced
// (bttrack's rule).
func (n *natChecker) check(k natKey) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.NATTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", k.addr.String())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	if !n.cfg.NATHandshake {
		return nil
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	var hs [68]byte
	copy(hs[:], bittorrent.HandshakePrefix)
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

// pendingNAT reports how many peers wait for a check (for tests and stats).
func (n *natChecker) pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.waiting
}
