package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/session/choker"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Batching of the serving path: the writer takes up to maxBatch queued requests at a time
// and sends them with one rate-limiter wait (and, when copying, one write).
const (
	maxBatch      = 16
	maxBatchBytes = maxBatch * wire.BlockSize
	// maxOut bounds the control bytes waiting for a peer that does not read them (REJECTs
	// to a request flood, HAVEs): past it the peer is dropped.
	maxOut = 1 << 20
	// deadlineSlack: a deadline is pushed forward only when it is this much older than its
	// timeout, so busy connections do not reset a timer per message.
	deadlineSlack  = 5 * time.Second
	pieceHeaderLen = 13
	// maxInbox bounds the messages a reader has decoded and the loop not yet taken: past
	// it the reader waits for the loop.
	maxInbox = 256
)

// request is a block a peer asked us for.
type request struct{ index, begin, length uint32 }

// peer is one connection. Fields under "loop" belong to the torrent's event loop; the
// reader and writer goroutines share only what is under mu and the atomics.
type peer struct {
	t        *Torrent
	c        *wire.Conn
	addr     netip.AddrPort // remote address
	dialAddr netip.AddrPort // where it listens: what we dialled, or its IP and extended-handshake port
	id       bittorrent.PeerID
	fast     bool // both sides speak BEP 6
	extended bool // both sides speak BEP 10
	w        io.Writer
	mode     sendMode // how blocks reach w
	webrtc   bool     // a data channel (its net.Conn says so), not TCP

	ctx    context.Context // cancelled on close: rate-limiter waits
	cancel context.CancelFunc
	wake   chan struct{} // cap 1: the writer has work
	quit   chan struct{} // closed by close
	once   sync.Once
	err    error // why it was closed; written once, before quit closes

	mu      sync.Mutex
	out     []byte    // control messages for the writer
	queue   []request // requests to serve, from qhead
	qhead   int
	choking bool     // we choke the peer
	allowed []uint32 // pieces it may request while choked (our ALLOWED FAST)

	// The reader's messages for the loop, in order. The reader rings the loop (evInbox on
	// Torrent.events) when it makes the inbox non-empty, and the loop takes it whole: one
	// hand-off per batch of messages rather than per block.
	inMu    sync.Mutex
	inbox   []event
	drained chan struct{} // cap 1: the loop emptied a full inbox

	uploaded   atomic.Int64 // payload bytes sent
	downloaded atomic.Int64 // payload bytes received
	lastWrite  atomic.Int64 // unix nanoseconds of the last write
	// writing is when the writer's current write started or last made progress (unix
	// nanoseconds), 0 when it is not writing: the loop sees a peer that does not read.
	writing atomic.Int64

	// loop
	connected    time.Time
	stalled      bool      // a write has made no progress for UploadStallTimeout
	lastUp       time.Time // when uploaded last grew (as of the last tick)
	lastUpBytes  int64
	interested   bool // it wants our data
	amInterested bool // we want its data
	peerChoking  bool // it chokes us
	has          wire.Bitfield
	chk          choker.Peer
	reqq         int  // its request queue length (extended handshake), 250 when unknown
	utMetadata   byte // its ut_metadata id, 0 when unsupported
	client       string
	dl           *peerDownload
	spare        []event // the inbox the loop last emptied, for reuse
	upRate       rateMeter
	downRate     rateMeter
}

// transporter is a net.Conn that names its transport (the WebRTC data channel's does).
type transporter interface{ Transport() string }

// isWebRTC reports whether c runs over a WebRTC data channel.
func isWebRTC(c *wire.Conn) bool {
	tc, ok := c.NetConn().(transporter)
	return ok && tc.Transport() == TransportWebRTC
}

func newPeer(t *Torrent, c *wire.Conn) *peer {
	p := &peer{
		t:           t,
		c:           c,
		webrtc:      isWebRTC(c),
		id:          c.Peer.PeerID,
		wake:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		drained:     make(chan struct{}, 1),
		choking:     true,
		peerChoking: true,
		reqq:        250,
		connected:   time.Now(),
		has:         wire.NewBitfield(t.numPieces),
	}
	lim := c.Limits(t.cfg.Wire.Reserved)
	p.fast, p.extended = lim.Fast, lim.Extended
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		p.addr = ta.AddrPort()
		p.addr = netip.AddrPortFrom(p.addr.Addr().Unmap(), p.addr.Port())
	}
	p.w = c.Writer
	if c.Crypto != wire.RC4 {
		// Plaintext after the handshake (with or without MSE's obfuscation): write to the
		// socket itself, which lets blocks go by sendfile.
		p.w = c.NetConn()
		if u, ok := p.w.(interface{ NetConn() net.Conn }); ok {
			p.w = u.NetConn() // Serve's counting wrapper: write to the socket itself
		}
		if _, ok := p.w.(*net.TCPConn); ok {
			p.mode = t.sendMode
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

func (p *peer) String() string { return p.addr.String() }

// close ends the connection with err (the first reason wins) and stops both goroutines.
func (p *peer) close(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.quit)
		p.cancel()
		p.c.Close()
	})
}

// closeErr is why the connection ended (after quit is closed).
func (p *peer) closeErr() error { return p.err }

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// queue appends a message for the writer. Safe from any goroutine.
func (p *peer) queueMsg(m *wire.Message) {
	p.mu.Lock()
	p.out = wire.AppendMessage(p.out, m)
	over := len(p.out) > maxOut
	p.mu.Unlock()
	if over {
		p.close(fmt.Errorf("%w: %d control bytes unread", errFlood, maxOut))
		return
	}
	p.signal()
}

func (p *peer) queueRaw(b []byte) {
	p.mu.Lock()
	p.out = append(p.out, b...)
	p.mu.Unlock()
	p.signal()
}

// setChoking chokes or unchokes the peer. Choking drops its queued requests except
// allowed-fast ones, with a REJECT each when it speaks Fast (BEP 6: a choke no longer
// rejects them implicitly).
func (p *peer) setChoking(choke bool) {
	p.mu.Lock()
	if p.choking == choke {
		p.mu.Unlock()
		return
	}
	p.choking = choke
	if !choke {
		p.out = append(p.out, 0, 0, 0, 1, byte(wire.Unchoke))
	} else {
		p.out = append(p.out, 0, 0, 0, 1, byte(wire.Choke))
		kept := p.queue[:p.qhead]
		for _, r := range p.queue[p.qhead:] {
			if p.allowedFast(r.index) {
				kept = append(kept, r)
			} else if p.fast {
				p.out = appendTriple(p.out, wire.Reject, r)
			}
		}
		p.queue = kept
	}
	p.mu.Unlock()
	p.signal()
}

func (p *peer) allowedFast(i uint32) bool {
	for _, a := range p.allowed {
		if a == i {
			return true
		}
	}
	return false
}

func appendTriple(b []byte, id wire.ID, r request) []byte {
	b = append(b, 0, 0, 0, 13, byte(id))
	b = binary.BigEndian.AppendUint32(b, r.index)
	b = binary.BigEndian.AppendUint32(b, r.begin)
	return binary.BigEndian.AppendUint32(b, r.length)
}

func appendPieceHeader(b []byte, r request) []byte {
	b = binary.BigEndian.AppendUint32(b, 9+r.length)
	b = append(b, byte(wire.Piece))
	b = binary.BigEndian.AppendUint32(b, r.index)
	return binary.BigEndian.AppendUint32(b, r.begin)
}

// onRequest queues a REQUEST for the writer (reader goroutine). The wire Reader has
// checked that the block lies inside the torrent.
func (p *peer) onRequest(r request) {
	p.mu.Lock()
	serve := p.t.have.has(r.index) && (!p.choking || p.allowedFast(r.index)) && len(p.queue)-p.qhead < ReqQ
	switch {
	case serve:
		if p.qhead > 0 && len(p.queue) == cap(p.queue) {
			n := copy(p.queue, p.queue[p.qhead:])
			p.queue, p.qhead = p.queue[:n], 0
		}
		p.queue = append(p.queue, r)
	case p.fast:
		p.out = appendTriple(p.out, wire.Reject, r)
	}
	over := len(p.out) > maxOut
	p.mu.Unlock()
	if over {
		p.close(fmt.Errorf("%w: requests while choked, REJECTs unread", errFlood))
		return
	}
	p.signal()
}

// onCancel removes a queued request (reader goroutine); a Fast peer gets a REJECT for it
// (BEP 6: every request is answered by a PIECE or a REJECT).
func (p *peer) onCancel(r request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := p.qhead; i < len(p.queue); i++ {
		if p.queue[i] == r {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			if p.fast {
				p.out = appendTriple(p.out, wire.Reject, r)
				p.signal()
			}
			return
		}
	}
}

// take moves up to maxBatch queued requests to dst (writer goroutine, under mu).
func (p *peer) take(dst []request) []request {
	n := min(len(p.queue)-p.qhead, maxBatch)
	dst = append(dst, p.queue[p.qhead:p.qhead+n]...)
	p.qhead += n
	if p.qhead == len(p.queue) {
		p.queue, p.qhead = p.queue[:0], 0
	}
	return dst
}

// readLoop is the reader goroutine: it decodes messages until the connection ends, then
// reports the peer gone.
func (p *peer) readLoop(lim wire.Limits) {
	defer p.t.wg.Done()
	err := p.read(lim)
	if p.t.dlState != nil {
		p.t.dlState.releaseClaims(p)
	}
	p.close(err)
	p.post(event{p: p, id: evGone, err: p.closeErr()})
}

// post puts ev in the inbox for the loop (reader goroutine); false when the loop has
// stopped.
func (p *peer) post(ev event) bool {
	p.inMu.Lock()
	ring := len(p.inbox) == 0
	p.inbox = append(p.inbox, ev)
	full := len(p.inbox) >= maxInbox
	p.inMu.Unlock()
	if ring && !p.t.report(event{p: p, id: evInbox}) {
		return false
	}
	if full {
		select {
		case <-p.drained:
		case <-p.t.quit:
			return false
		}
	}
	return true
}

// takeInbox empties the inbox (loop); give the slice back with doneInbox.
func (p *peer) takeInbox() []event {
	p.inMu.Lock()
	in := p.inbox
	p.inbox = p.spare[:0]
	p.inMu.Unlock()
	p.spare = nil
	return in
}

// doneInbox keeps the slice takeInbox returned for reuse, and releases a reader waiting
// on a full inbox.
func (p *peer) doneInbox(in []event) {
	if len(in) >= maxInbox {
		select {
		case p.drained <- struct{}{}:
		default:
		}
	}
	clear(in) // drop references to payloads and errors
	p.spare = in[:0]
}

func (p *peer) read(lim wire.Limits) error {
	r := wire.NewReader(p.c.Reader, lim)
	if p.t.dlState != nil {
		r.BlockBuffer = func(index, begin uint32, n int) []byte { return p.t.dlState.claim(p, index, begin, n) }
	}
	var m wire.Message
	var renewed time.Time
	slack := min(deadlineSlack, p.t.idle/4)
	for {
		if now := time.Now(); now.Sub(renewed) > slack {
			p.c.SetReadDeadline(now.Add(p.t.idle))
			renewed = now
		}
		if err := r.Read(&m); err != nil {
			return err
		}
		ev := event{p: p, id: m.ID, index: m.Index, begin: m.Begin, length: m.Length}
		switch m.ID {
		case wire.KeepAlive, wire.Port, wire.Suggest:
			continue
		case wire.Request:
			p.onRequest(request{m.Index, m.Begin, m.Length})
			continue
		case wire.Cancel:
			p.onCancel(request{m.Index, m.Begin, m.Length})
			continue
		case wire.Piece:
			n := int64(len(m.Block))
			p.downloaded.Add(n)
			p.t.downloaded.Add(n)
			p.t.cfg.Metrics.addPeerDownloaded(n, p.webrtc)
			ev.length = uint32(n)
			if p.t.dlState != nil {
				ev.ok = p.t.dlState.filled(p, m.Index, m.Begin, m.Block)
			}
			if err := p.t.waitDownload(p.ctx, int(n)); err != nil {
				return err
			}
		case wire.BitfieldMsg:
			ev.data = append([]byte(nil), m.Bitfield...)
		case wire.Extended:
			ev.extID = m.ExtendedID
			ev.data = append([]byte(nil), m.Payload...)
		}
		if !m.ID.Known() {
			continue
		}
		if !p.post(ev) {
			return errClosing
		}
	}
}

// writeLoop is the writer goroutine: it sends the control messages queued and serves the
// queued requests, in batches, until the connection ends.
func (p *peer) writeLoop() {
	defer p.t.wg.Done()
	p.close(p.write())
}

func (p *peer) write() error {
	ctrl := make([]byte, 0, 4<<10)
	var batch []request
	var buf []byte
	for {
		select {
		case <-p.wake:
		case <-p.quit:
			return nil
		}
		for {
			p.mu.Lock()
			ctrl, p.out = p.out, ctrl[:0]
			batch = p.take(batch[:0])
			p.mu.Unlock()
			if len(ctrl) == 0 && len(batch) == 0 {
				break
			}
			var err error
			buf, err = p.send(ctrl, batch, buf)
			if err != nil {
				return err
			}
		}
	}
}

// send writes ctrl and then a PIECE for each request of batch. Blocks go as the peer's mode
// says: sendVectored and sendFile on a plaintext TCP connection, else through buf (read
// from disk into the buffer, one write for the whole batch).
func (p *peer) send(ctrl []byte, batch []request, buf []byte) ([]byte, error) {
	var total int64
	for _, r := range batch {
		total += int64(r.length)
	}
	if total > 0 {
		if err := p.t.waitUpload(p.ctx, int(total)); err != nil {
			return buf, err
		}
	}
	now := time.Now()
	if now.UnixNano()-p.lastWrite.Load() > int64(deadlineSlack) {
		p.c.SetWriteDeadline(now.Add(WriteTimeout))
	}
	p.lastWrite.Store(now.UnixNano())
	p.writing.Store(now.UnixNano())
	defer p.writing.Store(0)
	pl := p.t.mi.Layout.PieceLength
	switch {
	case p.mode == sendVectored && total > 0:
		return buf, p.sendVectored(ctrl, batch)
	case p.mode == sendFile && total > 0:
		// The control messages and each PIECE header go with their block (MSG_MORE before
		// sendfile): written alone, each header was a system call and, with TCP_NODELAY, a
		// 13-byte segment of its own that the downloader had to wake up for.
		out := ctrl
		for _, r := range batch {
			if !p.t.have.has(r.index) {
				out = p.unheld(out, r) // invalidated since it was queued
				continue
			}
			out = appendPieceHeader(out, r)
			off := int64(r.index)*pl + int64(r.begin)
			if _, err := p.t.data.SendWithPrefix(p.w, out, off, int64(r.length)); err != nil {
				p.t.readFailed(err)
				return buf, fmt.Errorf("session: send piece %d: %w", r.index, err)
			}
			out = ctrl[:0]
			p.sent(int64(r.length))
			p.writing.Store(time.Now().UnixNano())
		}
		if len(out) > 0 {
			if _, err := p.w.Write(out); err != nil {
				return buf, fmt.Errorf("session: write: %w", err)
			}
		}
		return buf, nil
	}
	b := append(buf[:0], ctrl...)
	for _, r := range batch {
		if !p.t.have.has(r.index) {
			b = p.unheld(b, r)
			total -= int64(r.length)
			continue
		}
		b = appendPieceHeader(b, r)
		l := len(b)
		b = grow(b, int(r.length))
		off := int64(r.index)*pl + int64(r.begin)
		if _, err := p.t.data.ReadAt(b[l:], off); err != nil {
			p.t.readFailed(err)
			return b, fmt.Errorf("session: read piece %d: %w", r.index, err)
		}
	}
	if len(b) > 0 {
		if _, err := p.w.Write(b); err != nil {
			return b, fmt.Errorf("session: write: %w", err)
		}
	}
	if total > 0 {
		p.sent(total)
	}
	return b, nil
}

func (p *peer) sent(n int64) {
	p.uploaded.Add(n)
	p.t.uploaded.Add(n)
	p.t.cfg.Metrics.addUploaded(n, p.webrtc)
}

// grow extends b by n bytes, reallocating at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n, maxBatchBytes+maxBatch*pieceHeaderLen+4<<10))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

var errRunTwice = errors.New("session: Run called twice")
