package rtc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

const (
	// maxMessage is the largest data-channel message we send: 16 KiB is what every browser
	// accepts.
	maxMessage = 16 << 10
	// maxRecvMessage is the largest message we accept from a peer (advertised in our SDP's
	// max-message-size) and the size of a connection's read buffer: a larger message would
	// be cut, so the connection ends instead.
	maxRecvMessage = 64 << 10
	// highWater and lowWater bound the bytes queued in SCTP for one peer: a write waits
	// above highWater until the queue drains below lowWater.
	highWater = 1 << 20
	lowWater  = 256 << 10
)

// errClosed is returned by a write on a closed connection.
var errClosed = errors.New("rtc: data channel closed")

// conn is a detached data channel as a net.Conn: a byte stream over a message channel.
type conn struct {
	p   *peer
	pc  *webrtc.PeerConnection
	dc  *webrtc.DataChannel
	rw  datachannel.ReadWriteCloserDeadliner
	buf []byte // unread part of the last message read
	msg []byte // the read buffer (one message)

	low    chan struct{} // rung when SCTP's queue drains below lowWater
	closed chan struct{}
	once   sync.Once

	mu            sync.Mutex
	writeDeadline time.Time

	local, remote net.Addr
}

func newConn(p *peer, dc *webrtc.DataChannel, rw datachannel.ReadWriteCloserDeadliner) *conn {
	pc := p.pc
	c := &conn{
		p: p, pc: pc, dc: dc, rw: rw,
		msg:    make([]byte, maxRecvMessage),
		low:    make(chan struct{}, 1),
		closed: make(chan struct{}),
		local:  addr("webrtc-local"),
		remote: addr("webrtc"),
	}
	if pair, err := selectedPair(pc); err == nil {
		c.local = &net.UDPAddr{IP: net.ParseIP(pair.Local.Address), Port: int(pair.Local.Port)}
		c.remote = &net.UDPAddr{IP: net.ParseIP(pair.Remote.Address), Port: int(pair.Remote.Port)}
	}
	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	return c
}

func selectedPair(pc *webrtc.PeerConnection) (*webrtc.ICECandidatePair, error) {
	sctp := pc.SCTP()
	if sctp == nil {
		return nil, errors.New("no SCTP transport")
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return nil, err
	}
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		return nil, errors.New("no candidate pair")
	}
	return pair, nil
}

// Read reads from the current message, reading the next one when it is used up.
func (c *conn) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		n, err := c.rw.Read(c.msg)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, err
			}
			return 0, fmt.Errorf("rtc: read: %w", err)
		}
		c.buf = c.msg[:n]
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// Write sends p in messages of up to maxMessage bytes, waiting while SCTP holds more than
// highWater bytes for this peer, until the write deadline.
func (c *conn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := c.waitRoom(); err != nil {
			return written, err
		}
		chunk := p[:min(len(p), maxMessage)]
		n, err := c.rw.Write(chunk)
		written += n
		if err != nil {
			return written, fmt.Errorf("rtc: write: %w", err)
		}
		p = p[len(chunk):]
	}
	return written, nil
}

func (c *conn) waitRoom() error {
	for c.dc.BufferedAmount() > highWater {
		c.mu.Lock()
		dl := c.writeDeadline
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-c.low:
		case <-c.closed:
			return errClosed
		case <-timeout:
			return os.ErrDeadlineExceeded
		}
	}
	return nil
}

// Close closes the data channel and the PeerConnection (its ICE sockets with it) and frees
// the peer's slot.
func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		c.rw.Close()
		err = c.pc.Close()
		c.p.done()
	})
	return err
}

// Transport names the connection's transport for the peer engine's metrics.
func (c *conn) Transport() string { return "webrtc" }

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.rw.SetReadDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error { return c.rw.SetReadDeadline(t) }

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return nil
}

// addr is a net.Addr for a connection whose ICE pair is not known.
type addr string

func (a addr) Network() string { return "webrtc" }
func (a addr) String() string  { return string(a) }

var _ net.Conn = (*conn)(nil)
