package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// config is one run of the load generator; flags fill it (main.go).
type config struct {
	URL         string        // ws://host:port/announce
	Peers       int           // WebSocket peers connected for the whole run
	Swarms      int           // torrents the peers are spread over (peer i in swarm i % Swarms)
	Sources     int           // source addresses 127.0.0.2, 127.0.0.3, …
	Offers      int           // offers per announce (numwant)
	SDPBytes    int           // size of each dummy offer and answer SDP
	Conc        int           // announces in flight during a round (closed loop)
	ConnectConc int           // connections being set up at once
	Dur         time.Duration // length of a round
	Timeout     time.Duration // bound of one dial, write or announce→reply wait
	ConnectMax  time.Duration // bound of the whole connect phase
	Seed        uint64        // population and offer IDs
	ReadLimit   int64         // largest message a peer accepts from the tracker
}

func (c *config) validate() error {
	switch {
	case c.URL == "":
		return errors.New("-url is required")
	case c.Peers < 2:
		return errors.New("-peers: at least 2 (offers need someone to go to)")
	case c.Swarms < 1 || c.Swarms > c.Peers:
		return fmt.Errorf("-swarms %d: between 1 and -peers", c.Swarms)
	case c.Sources < 1 || c.Sources > 60000:
		return fmt.Errorf("-sources %d: between 1 and 60000", c.Sources)
	case c.Offers < 0 || c.Offers > 50:
		return fmt.Errorf("-offers %d: between 0 and 50", c.Offers)
	case c.Conc < 1 || c.Conc > c.Peers:
		return fmt.Errorf("-conc %d: between 1 and -peers", c.Conc)
	case c.ConnectConc < 1:
		return errors.New("-connect-conc: at least 1")
	case c.Dur <= 0 || c.Timeout <= 0 || c.ConnectMax <= 0:
		return errors.New("-dur, -timeout and -connect-max must be positive")
	case c.SDPBytes < 100 || c.SDPBytes > 16384:
		return fmt.Errorf("-sdp-bytes %d: between 100 and 16384", c.SDPBytes)
	}
	return nil
}

// pendingRing is how many of a peer's latest offers are remembered to match answers: more than
// two announces' worth, so an answer arriving after the next announce still matches.
const pendingRing = 128

type pendingOffer struct {
	id   [20]byte
	sent time.Time
}

// peer is one WebSocket peer. Its reader goroutine answers relayed offers and hands the reply
// to its own announce to the announcer waiting on reply.
type peer struct {
	id    [20]byte
	ih    []byte
	left  int64
	conn  *websocket.Conn
	wmu   sync.Mutex // gorilla/websocket allows one writer at a time
	reply chan kind
	busy  atomic.Bool // an announcer owns it (or it timed out once and is left alone)

	mu      sync.Mutex
	pending [pendingRing]pendingOffer
	next    int
}

func (p *peer) remember(id [20]byte, t time.Time) {
	p.mu.Lock()
	p.pending[p.next%pendingRing] = pendingOffer{id, t}
	p.next++
	p.mu.Unlock()
}

// match returns when offer id was sent, if it is one of the peer's recent offers; an answer
// matches once.
func (p *peer) match(id []byte) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.pending {
		po := &p.pending[i]
		if !po.sent.IsZero() && bytes.Equal(po.id[:], id) {
			t := po.sent
			po.sent = time.Time{}
			return t, true
		}
	}
	return time.Time{}, false
}

// counters are the events of a round; each round starts them at zero.
type counters struct {
	announces      atomic.Int64 // replies to announces with offers
	offersSent     atomic.Int64 // offers in those announces
	offersRelayed  atomic.Int64 // offers that reached another peer
	answersSent    atomic.Int64
	answersRecv    atomic.Int64 // answers relayed back to an offering peer
	answersMatched atomic.Int64 // … to one of its outstanding offers
	failures       atomic.Int64 // "failure reason" messages
	timeouts       atomic.Int64 // announces without a reply within -timeout
	writeErrs      atomic.Int64
	closed         atomic.Int64 // connections the tracker closed
	other          atomic.Int64 // messages of no known kind, binary frames, stray replies
	missed         atomic.Int64 // paced starts lost because every announcer was waiting
}

func (c *counters) reset() {
	for _, a := range []*atomic.Int64{&c.announces, &c.offersSent, &c.offersRelayed, &c.answersSent,
		&c.answersRecv, &c.answersMatched, &c.failures, &c.timeouts, &c.writeErrs, &c.closed, &c.other, &c.missed} {
		a.Store(0)
	}
}

// load is a population of connected peers and the rounds run on it.
type load struct {
	cfg      config
	offerSDP []byte // JSON string tokens
	ansSDP   []byte
	peers    []*peer
	live     []*peer // the connected ones
	c        counters
	lat      hist // announce → reply
	ansLat   hist // offer sent → answer received (two relays and the answering peer)

	ctx      context.Context // lifetime of the connections
	stop     context.CancelFunc
	readers  sync.WaitGroup
	stopping atomic.Bool
}

func newLoad(cfg config) *load {
	ctx, stop := context.WithCancel(context.Background())
	l := &load{
		cfg:      cfg,
		offerSDP: jsonString(sdp("offer", cfg.SDPBytes)),
		ansSDP:   jsonString(sdp("answer", cfg.SDPBytes)),
		ctx:      ctx,
		stop:     stop,
	}
	l.peers = make([]*peer, cfg.Peers)
	hashes := make([][]byte, cfg.Swarms)
	for s := range hashes {
		h := sha1.Sum([]byte("wsbench swarm " + strconv.Itoa(s)))
		hashes[s] = h[:]
	}
	for i := range l.peers {
		p := &peer{ih: hashes[i%cfg.Swarms], left: 1 << 30, reply: make(chan kind, 1)}
		// Binary peer IDs (bytes 0–255), as browsers' random ones are: every byte value
		// has to survive the trackers' JSON.
		copy(p.id[:], "-WS0001-")
		binary.BigEndian.PutUint32(p.id[8:], uint32(i))
		binary.BigEndian.PutUint64(p.id[12:], splitmix(cfg.Seed^uint64(i)))
		l.peers[i] = p
	}
	return l
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// source returns the k-th source address, 127.0.0.2 onwards.
func source(k int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte((k + 2) >> 16), byte((k + 2) >> 8), byte(k + 2)})
}

// connect dials every peer (ConnectConc at a time) and has it announce "started"; a peer that
// fails either is left out of the rounds. It returns how many failed.
func (l *load) connect() (failed int, err error) {
	// One write buffer pool for all peers: an idle peer holds no write buffer.
	pool := &sync.Pool{}
	dialers := make([]*websocket.Dialer, l.cfg.Sources)
	for k := range dialers {
		d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(source(k), 0)), Timeout: l.cfg.Timeout}
		dialers[k] = &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: l.cfg.Timeout,
			ReadBufferSize: 4096, WriteBufferPool: pool}
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.ConnectMax)
	defer cancel()
	var next, nfailed atomic.Int64
	var firstErr atomic.Pointer[error]
	ok := make([]bool, len(l.peers))
	var wg sync.WaitGroup
	for range min(l.cfg.ConnectConc, len(l.peers)) {
		wg.Go(func() {
			var buf []byte
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(l.peers) {
					return
				}
				if e := l.join(ctx, dialers[i%len(dialers)], l.peers[i], &buf); e != nil {
					nfailed.Add(1)
					firstErr.CompareAndSwap(nil, &e)
					continue
				}
				ok[i] = true
			}
		})
	}
	wg.Wait()
	for i, p := range l.peers {
		if ok[i] {
			l.live = append(l.live, p)
		}
	}
	failed = len(l.peers) - len(l.live)
	if e := firstErr.Load(); e != nil {
		err = *e
	}
	if ctx.Err() != nil && l.ctx.Err() == nil {
		err = fmt.Errorf("connect phase cut at -connect-max %v after %d peers: %w", l.cfg.ConnectMax, len(l.live), ctx.Err())
	}
	return failed, err
}

// join connects p and announces it with event=started and no offers.
func (l *load) join(ctx context.Context, d *websocket.Dialer, p *peer, buf *[]byte) error {
	dctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	c, resp, err := d.DialContext(dctx, l.cfg.URL, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: HTTP %d: %w", l.cfg.URL, resp.StatusCode, err)
		}
		return fmt.Errorf("dial %s: %w", l.cfg.URL, err)
	}
	c.SetReadLimit(l.cfg.ReadLimit)
	p.conn = c
	l.readers.Go(func() { l.read(p) })
	*buf = announceMsg((*buf)[:0], p.ih, p.id[:], p.left, nil, nil, true)
	if err := l.write(p, *buf); err != nil {
		c.Close()
		return fmt.Errorf("started announce: %w", err)
	}
	select {
	case k := <-p.reply:
		if k != kindReply {
			c.Close()
			return errors.New("started announce: the tracker sent a failure reason")
		}
		return nil
	case <-dctx.Done():
		c.Close()
		return fmt.Errorf("started announce: no reply: %w", dctx.Err())
	}
}

// write sends msg as one text message on p's connection, bounded by Timeout.
func (l *load) write(p *peer, msg []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.conn.SetWriteDeadline(time.Now().Add(l.cfg.Timeout)); err != nil {
		return err
	}
	return p.conn.WriteMessage(websocket.TextMessage, msg)
}

// read is p's reader: it runs until the connection closes.
func (l *load) read(p *peer) {
	var buf []byte
	for {
		typ, msg, err := p.conn.ReadMessage()
		if err != nil {
			if !l.stopping.Load() {
				l.c.closed.Add(1)
			}
			return
		}
		if typ != websocket.TextMessage {
			l.c.other.Add(1)
			continue
		}
		switch k := classify(msg); k {
		case kindReply, kindFailure:
			if k == kindFailure {
				l.c.failures.Add(1)
			}
			select {
			case p.reply <- k:
			default:
				l.c.other.Add(1) // nobody waits for it
			}
		case kindOffer:
			l.c.offersRelayed.Add(1)
			ih, ok1 := field(msg, "info_hash")
			from, ok2 := field(msg, "peer_id")
			oid, ok3 := field(msg, "offer_id")
			if !ok1 || !ok2 || !ok3 || ih[0] != '"' || from[0] != '"' || oid[0] != '"' {
				l.c.other.Add(1)
				continue
			}
			buf = answerMsg(buf[:0], ih, p.id[:], from, oid, l.ansSDP)
			if err := l.write(p, buf); err != nil {
				l.c.writeErrs.Add(1)
				continue
			}
			l.c.answersSent.Add(1)
		case kindAnswer:
			l.c.answersRecv.Add(1)
			tok, ok := field(msg, "offer_id")
			if !ok {
				continue
			}
			id, err := decodeLatin1(tok)
			if err != nil {
				continue
			}
			if t, ok := p.match(id); ok {
				l.c.answersMatched.Add(1)
				l.ansLat.add(time.Since(t))
			}
		default:
			l.c.other.Add(1)
		}
	}
}

// round runs Conc announcers for Dur: each takes a random idle peer, sends an announce with
// Offers offers and waits for its reply. With rate 0 they run in a closed loop (as fast as
// the tracker answers: its capacity); with rate > 0 an announce starts at most rate times a
// second (a fixed offered load: the latency at that load), and starts the announcers could
// not make because all Conc were waiting are counted as missed. An announce sent before the
// end is waited for (up to Timeout), so the round ends when the last reply is in; the returned
// duration is that wall time.
func (l *load) round(seed uint64, rate int) time.Duration {
	l.c.reset()
	l.lat.reset()
	l.ansLat.reset()
	start := time.Now()
	deadline := start.Add(l.cfg.Dur)
	var tokens chan struct{}
	var wg sync.WaitGroup
	if rate > 0 {
		tokens = make(chan struct{}, l.cfg.Conc)
		wg.Go(func() { l.pace(deadline, rate, tokens) })
	}
	for w := range l.cfg.Conc {
		wg.Go(func() { l.announcer(deadline, tokens, rand.New(rand.NewPCG(seed, uint64(w)))) })
	}
	wg.Wait()
	return time.Since(start)
}

// pace puts rate tokens a second into tokens until deadline, then closes it; a token that
// finds the channel full (every announcer busy) is a missed start.
func (l *load) pace(deadline time.Time, rate int, tokens chan<- struct{}) {
	defer close(tokens)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := int64(0)
	for now := range tick.C {
		if !now.Before(deadline) || l.ctx.Err() != nil {
			return
		}
		due := int64(now.Sub(start).Seconds() * float64(rate))
		for ; sent < due; sent++ {
			select {
			case tokens <- struct{}{}:
			default:
				l.c.missed.Add(1)
			}
		}
	}
}

func (l *load) announcer(deadline time.Time, tokens <-chan struct{}, rng *rand.Rand) {
	ids := make([][]byte, l.cfg.Offers)
	for i := range ids {
		ids[i] = make([]byte, 20)
	}
	var buf []byte
	timer := time.NewTimer(l.cfg.Timeout)
	defer timer.Stop()
	for time.Now().Before(deadline) && l.ctx.Err() == nil {
		if tokens != nil {
			if _, ok := <-tokens; !ok {
				return
			}
		}
		p := l.pick(rng)
		if p == nil {
			return
		}
		select { // a reply that came after its announcer stopped waiting
		case <-p.reply:
		default:
		}
		now := time.Now()
		for _, id := range ids {
			binary.LittleEndian.PutUint64(id[0:], rng.Uint64())
			binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
			binary.LittleEndian.PutUint32(id[16:], rng.Uint32())
			p.remember([20]byte(id), now)
		}
		buf = announceMsg(buf[:0], p.ih, p.id[:], p.left, ids, l.offerSDP, false)
		t0 := time.Now()
		if err := l.write(p, buf); err != nil {
			l.c.writeErrs.Add(1)
			continue // p stays busy: its connection is gone
		}
		l.c.offersSent.Add(int64(len(ids)))
		timer.Reset(l.cfg.Timeout)
		select {
		case k := <-p.reply:
			l.lat.add(time.Since(t0))
			if k == kindReply {
				l.c.announces.Add(1)
			}
			p.busy.Store(false)
		case <-timer.C:
			l.c.timeouts.Add(1) // p stays busy: a late reply must not be taken for another's
		}
	}
}

// pick returns a random peer no announcer owns, and owns it; nil when a thousand tries found
// none (every peer busy or lost).
func (l *load) pick(rng *rand.Rand) *peer {
	for range 1000 {
		p := l.live[rng.IntN(len(l.live))]
		if p.busy.CompareAndSwap(false, true) {
			return p
		}
	}
	return nil
}

// settle waits until no relayed offer or answer has arrived for a while (bounded by Timeout),
// so that answers to a round's last offers count in that round.
func (l *load) settle() {
	end := time.Now().Add(l.cfg.Timeout)
	last := l.c.offersRelayed.Load() + l.c.answersRecv.Load()
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		now := l.c.offersRelayed.Load() + l.c.answersRecv.Load()
		if now == last {
			return
		}
		last = now
	}
}

// close drops every connection at once (no closing handshake: 50,000 of them would take
// long, and the trackers must cope with peers that vanish).
func (l *load) close() {
	l.stopping.Store(true)
	for _, p := range l.peers {
		if p.conn != nil {
			p.conn.Close()
		}
	}
	l.stop()
	l.readers.Wait()
}
