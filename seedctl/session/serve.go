package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// MaxHandshakes bounds the incoming handshakes Serve runs at once; connections beyond it
// are closed at once (counted as busy) rather than queued behind slow or silent ones.
const MaxHandshakes = 64

// Serve accepts peer connections on l until ctx is done, runs the handshake of each with w
// (whose Known and InfoHashes name the torrents served), and hands it to the torrent
// lookup returns for its info-hash. At most maxConns incoming connections are open at once
// (0: no limit) and MaxHandshakes handshakes run at once; every connection refused is
// counted in m. Serve closes l and waits for its handshakes before it returns; it returns
// nil when ctx ends it, or the listener's error.
func Serve(ctx context.Context, l net.Listener, w *wire.Config, lookup func(bittorrent.InfoHash) *Torrent, maxConns int, m *Metrics) error {
	var (
		wg     sync.WaitGroup
		open   atomic.Int64
		shakes = make(chan struct{}, MaxHandshakes)
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
		if maxConns > 0 && open.Load() >= int64(maxConns) {
			m.refuse(RefusedGlobalLimit)
			nc.Close()
			continue
		}
		select {
		case shakes <- struct{}{}:
		default:
			m.refuse(RefusedBusy)
			nc.Close()
			continue
		}
		open.Add(1)
		cc := &countedConn{Conn: nc, open: &open}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, t, err := handshake(ctx, cc, w, lookup)
			<-shakes
			if err != nil {
				cc.Close()
				switch {
				case errors.Is(err, wire.ErrUnknownInfoHash):
					m.hostileDisconnect(HostileUnknownInfoHash)
				case errors.Is(err, wire.ErrSelfConnection):
					m.refuse(RefusedSelf)
				default:
					m.refuse(RefusedHandshake)
				}
				return
			}
			t.HandleConn(c)
		}()
	}
}

// handshake runs wire.Accept under HandshakeTimeout (cut short when ctx ends) and finds
// the torrent.
func handshake(ctx context.Context, nc net.Conn, w *wire.Config, lookup func(bittorrent.InfoHash) *Torrent) (*wire.Conn, *Torrent, error) {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
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

// countedConn releases its slot of Serve's connection count once, on Close. NetConn gives
// the session the TCP connection underneath, for sendfile.
type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// NetConn returns the connection underneath.
func (c *countedConn) NetConn() net.Conn { return c.Conn }
