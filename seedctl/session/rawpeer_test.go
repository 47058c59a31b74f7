package session

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// rawPeer is a hand-driven peer connection for tests: it says exactly what a test wants,
// hostile or not.
type rawPeer struct {
	tb   testing.TB
	conn net.Conn
	c    *wire.Conn
	r    *wire.Reader
	w    *wire.Writer
	m    wire.Message
}

// dialRaw connects to addr with a plaintext handshake for mi and reserved bits res.
func dialRaw(tb testing.TB, addr netip.AddrPort, mi *metafile.Torrent, tag byte, res wire.Reserved, enc wire.Encryption) *rawPeer {
	tb.Helper()
	return dialRawWith(tb, nil, addr, mi, tag, res, enc)
}

// dialRawWith is dialRaw through d (nil: a default dialer).
func dialRawWith(tb testing.TB, d *net.Dialer, addr netip.AddrPort, mi *metafile.Torrent, tag byte, res wire.Reserved, enc wire.Encryption) *rawPeer {
	tb.Helper()
	cfg := &wire.Config{PeerID: peerID(tag), Reserved: res, Encryption: enc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, d, addr.String(), cfg, bittorrent.InfoHash(mi.InfoHash))
	if err != nil {
		tb.Fatalf("dial %v: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	lim := c.Limits(res)
	lim.MaxBlock = wire.MaxRequest
	p := &rawPeer{tb: tb, c: c, conn: c.NetConn(), r: wire.NewReader(c.Reader, lim), w: wire.NewWriter(c.Writer)}
	return p
}

func (p *rawPeer) flush() {
	p.tb.Helper()
	if err := p.w.Flush(); err != nil {
		p.tb.Fatalf("raw peer write: %v", err)
	}
}

// send writes raw bytes (a hostile message the Writer would not produce).
func (p *rawPeer) send(b []byte) {
	p.tb.Helper()
	if _, err := p.c.Writer.Write(b); err != nil {
		p.tb.Fatalf("raw peer write: %v", err)
	}
}

// next reads the next message other than keep-alive within timeout; err when none.
func (p *rawPeer) next(timeout time.Duration) (*wire.Message, error) {
	p.c.SetReadDeadline(time.Now().Add(timeout))
	for {
		if err := p.r.Read(&p.m); err != nil {
			return nil, err
		}
		if p.m.ID != wire.KeepAlive {
			return &p.m, nil
		}
	}
}

// expect reads until a message with id arrives (failing the test after timeout).
func (p *rawPeer) expect(id wire.ID, timeout time.Duration) *wire.Message {
	p.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := p.next(time.Until(deadline))
		if err != nil {
			p.tb.Fatalf("waiting for %v: %v", id, err)
		}
		if m.ID == id {
			return m
		}
	}
}

// closed reports whether the remote end closed the connection within timeout (reading and
// dropping whatever comes before).
func (p *rawPeer) closed(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	rd := bufio.NewReader(p.c.Reader)
	for {
		p.c.SetReadDeadline(deadline)
		if _, err := rd.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
}
