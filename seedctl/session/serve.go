package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/subnet"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Defaults of ServeConfig.
const (
	// DefaultMaxHandshakes bounds the incoming handshakes in progress at once.
	DefaultMaxHandshakes = 64
	// DefaultMaxHandshakesPerIP bounds the handshakes in progress from one address (an
	// IPv4 address or an IPv6 /64), so that one host never holds more than an eighth of
	// the slots.
	DefaultMaxHandshakesPerIP = 8
	// DefaultFirstByteTimeout is how long a new connection may stay silent: a client
	// sends its handshake as soon as it connects.
	DefaultFirstByteTimeout = 5 * time.Second
	// DefaultAcceptHandshakeTimeout bounds a whole incoming handshake, BEP 3 and MSE
	// (libtorrent's handshake_timeout is 10 s too).
	DefaultAcceptHandshakeTimeout = 10 * time.Second
)

// ServeConfig bounds what Serve accepts. The zero value of a field takes the default given
// with it; a negative value is an error.
type ServeConfig struct {
	// MaxConns bounds the incoming connections open at once, handshakes included (0: no
	// limit).
	MaxConns int
	// MaxHandshakes bounds the handshakes in progress (DefaultMaxHandshakes). When every
	// slot is taken, a new connection takes the slot of the oldest handshake, which is
	// closed: silent connections cannot lock peers out, they only push each other out.
	MaxHandshakes int
	// MaxHandshakesPerIP bounds the handshakes in progress from one IPv4 address or IPv6
	// /64 (DefaultMaxHandshakesPerIP); a connection over it is closed at once.
	MaxHandshakesPerIP int
	// FirstByteTimeout closes a connection that sends nothing for this long
	// (DefaultFirstByteTimeout).
	FirstByteTimeout time.Duration
	// HandshakeTimeout bounds the whole handshake from the accept
	// (DefaultAcceptHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Metrics counts refusals and evictions (nil: nothing).
	Metrics *Metrics
}

func (c ServeConfig) withDefaults() (ServeConfig, error) {
	if c.MaxConns < 0 || c.MaxHandshakes < 0 || c.MaxHandshakesPerIP < 0 || c.FirstByteTimeout < 0 || c.HandshakeTimeout < 0 {
		return c, fmt.Errorf("%w: negative Serve limit", ErrConfig)
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.MaxHandshakesPerIP == 0 {
		c.MaxHandshakesPerIP = DefaultMaxHandshakesPerIP
	}
	if c.FirstByteTimeout == 0 {
		c.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultAcceptHandshakeTimeout
	}
	return c, nil
}

// Serve accepts peer connections on l until ctx is done, runs the handshake of each with w
// (whose Known and InfoHashes name the torrents served), and hands it to the torrent
// lookup returns for its info-hash, within the bounds of cfg; every connection refused or
// evicted is counted in cfg.Metrics. Serve closes l and waits for its handshakes before it
// returns; it returns nil when ctx ends it, or the listener's error.
func Serve(ctx context.Context, l net.Listener, w *wire.Config, lookup func(bittorrent.InfoHash) *Torrent, cfg ServeConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		l.Close()
		return err
	}
	m := cfg.Metrics
	var (
		wg   sync.WaitGroup
		open atomic.Int64
		hs   = pending{max: cfg.MaxHandshakes, perAddr: cfg.MaxHandshakesPerIP, count: map[netip.Prefix]int{}, m: m}
	)
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer func() {
		stop()
		l.Close()
		wg.Wait()
	}()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("session: accept: %w", err)
			}
			// EMFILE and the like: wait a little rather than spin.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if cfg.MaxConns > 0 && open.Load() >= int64(cfg.MaxConns) {
			m.refuse(RefusedGlobalLimit)
			nc.Close()
			continue
		}
		s := &shake{key: connKey(nc)}
		evicted, ok := hs.add(s)
		if !ok {
			m.refuse(RefusedHandshakesPerIP)
			nc.Close()
			continue
		}
		open.Add(1)
		now := time.Now()
		cc := &countedConn{Conn: nc, open: &open, rest: now.Add(cfg.HandshakeTimeout)}
		s.c = cc
		if evicted != nil {
			m.evictHandshake()
			evicted.c.Close()
		}
		cc.SetDeadline(now.Add(min(cfg.FirstByteTimeout, cfg.HandshakeTimeout)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, t, err := handshake(ctx, cc, w, lookup)
			if !hs.remove(s) {
				cc.Close() // evicted: counted and closed already
				return
			}
			if err != nil {
				cc.Close()
				var ne net.Error
				switch {
				case errors.Is(err, wire.ErrUnknownInfoHash):
					m.hostileDisconnect(HostileUnknownInfoHash)
				case errors.Is(err, wire.ErrSelfConnection):
					m.refuse(RefusedSelf)
				case (errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) && !cc.heard:
					m.refuse(RefusedFirstByteTimeout)
				case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
					m.refuse(RefusedHandshakeTimeout)
				default:
					m.refuse(RefusedHandshake)
				}
				return
			}
			t.HandleConn(c)
		}()
	}
}

// handshake runs wire.Accept (under the deadline Serve set, cut short when ctx ends) and
// finds the torrent.
func handshake(ctx context.Context, nc net.Conn, w *wire.Config, lookup func(bittorrent.InfoHash) *Torrent) (*wire.Conn, *Torrent, error) {
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c, err := wire.Accept(nc, w)
	if err != nil {
		return nil, nil, err
	}
	t := lookup(c.Peer.InfoHash)
	if t == nil {
		return nil, nil, fmt.Errorf("%w: %v no longer served", wire.ErrUnknownInfoHash, c.Peer.InfoHash)
	}
	return c, t, nil
}

// connKey is the per-address key of nc's remote end (see subnet.Of); the zero Prefix when it
// is not a TCP connection.
func connKey(nc net.Conn) netip.Prefix {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return subnet.Of(ta.AddrPort().Addr())
	}
	return netip.Prefix{}
}

// shake is one handshake in progress.
type shake struct {
	c   net.Conn
	key netip.Prefix
}

// pending is Serve's table of handshakes in progress, oldest first, with a count per
// address. The accept loop adds to it, each handshake's goroutine removes its own entry;
// an entry evicted by add is gone before its goroutine notices.
type pending struct {
	max, perAddr int
	m            *Metrics

	mu    sync.Mutex
	order []*shake
	count map[netip.Prefix]int
}

// add enters s unless its address is at its limit (ok false). When every slot is taken,
// the oldest entry is removed to make room and returned for the caller to close.
func (p *pending) add(s *shake) (evicted *shake, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[s.key] >= p.perAddr {
		return nil, false
	}
	if len(p.order) >= p.max {
		evicted = p.order[0]
		p.drop(0)
	}
	p.order = append(p.order, s)
	p.count[s.key]++
	p.m.handshakesPending(1)
	return evicted, true
}

// remove takes s out of the table: false when it was evicted already.
func (p *pending) remove(s *shake) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.order, s)
	if i < 0 {
		return false
	}
	p.drop(i)
	return true
}

func (p *pending) drop(i int) {
	s := p.order[i]
	p.order = slices.Delete(p.order, i, i+1)
	if p.count[s.key]--; p.count[s.key] == 0 {
		delete(p.count, s.key)
	}
	p.m.handshakesPending(-1)
}

// countedConn releases its slot of Serve's connection count once, on Close, and moves the
// deadline from the first byte's to the handshake's when the peer starts talking. NetConn
// gives the session the TCP connection underneath, for sendfile.
type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
	// Until the first byte: rest is the handshake's deadline, set when it comes. Used
	// by one goroutine at a time (the handshake's, then the reader's).
	rest  time.Time
	heard bool
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard {
		c.heard = true
		c.Conn.SetDeadline(c.rest)
	}
	return n, err
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// NetConn returns the connection underneath.
func (c *countedConn) NetConn() net.Conn { return c.Conn }
