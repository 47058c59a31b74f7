package session

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/session/picker"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Pipelining: how many blocks we keep requested from one peer.
const (
	minPipeline = 4
	// initialPipeline is where a new peer's queue starts: high, because the rate estimate
	// lags by seconds and a fast peer must not idle meanwhile. The peer's reqq caps it (250
	// when it gives none, as BEP 10 suggests; aria2 gives none).
	initialPipeline = 64
	// maxPipeline: deeper queues cost more than they give. In-process (BenchmarkGet, a
	// seed advertising reqq 500) a cap of 500 ran at ~430 MB/s and 4.3 CPU s/GiB, 250 at
	// ~520 and 3.6, 128 at ~610 and 3.0; against aria2 (no reqq: 250) 250 is what it
	// allows. 250 keeps room for peers far away (4 MiB in flight).
	maxPipeline = 250
	// maxRefill bounds the low-water mark of a peer's queue: requests go out in batches of
	// up to this many (one write, one wake-up of the peer instead of one per block).
	maxRefill = 32
	// verifyWorkers bounds the pieces hashed and written at once.
	verifyWorkers = 2
)

// download is the loop's downloading state: the picker, the pieces being assembled and
// checked, and ban counting.
type download struct {
	t         *Torrent
	pk        *picker.Picker
	have      wire.Bitfield
	left      int64
	hashFails int
	fails     map[netip.Addr]int
	byPP      map[*picker.Peer]netip.Addr // every picker peer that may own blocks of a piece in progress
	scratch   []picker.Block
	free      []*pieceBuf // verified pieces' buffers, to reuse
	reqBuf    []byte      // REQUEST messages being built
	results   chan verifyResult
	sem       chan struct{}
	ctx       context.Context // Run's; cancelled when the download completes
	cancel    context.CancelFunc

	web        []*webSeed
	runs       []*webRun // in flight
	webResults chan runResult
	runFree    [][]byte // run buffers to reuse
}

// peerDownload is what the loop keeps about downloading from one peer.
type peerDownload struct {
	pp        *picker.Peer
	reqs      []picker.Block // requested, not yet answered
	lastBlock time.Time      // last block received, or when the first request went out
	snubbed   bool
	allowed   []uint32 // ALLOWED FAST from the peer
	// dropped are blocks requested from the peer whose copy was dropped because another
	// peer's reader held the block (endgame). The picker still counts them outstanding
	// here: asking again at once would only race the copy being read. If a peer goes away
	// (perhaps that reader, mid-block), they go back to the picker (see peerGone).
	dropped []picker.Block

	// Queue sizing. In slow start the queue grows by one block per block received (it
	// doubles every round trip) until the peer's rate stops growing; then it holds
	// queueTime of the rate measured over the last tick.
	slowStart bool
	queue     int   // the queue in slow start
	rate      int64 // bytes per second over the last tick
	total     int64 // p.downloaded at the last tick
	sampled   time.Time
}

// queueTime is how much of a peer's rate we keep requested from it.
const queueTime = time.Second

// sample measures the peer's rate since the last tick (total is p.downloaded) and ends
// slow start once it grew by less than an eighth.
func (pd *peerDownload) sample(now time.Time, total int64) {
	if !pd.sampled.IsZero() {
		if dt := now.Sub(pd.sampled); dt > 0 {
			r := int64(float64(total-pd.total) / dt.Seconds())
			if pd.slowStart && r > 0 && r <= pd.rate+pd.rate/8 {
				pd.slowStart = false
			}
			pd.rate = r
		}
	}
	pd.total, pd.sampled = total, now
}

type verifyResult struct {
	pb  *pieceBuf
	ok  bool
	err error // a write error (not the peer's fault)
}

func newDownload(t *Torrent, have *wire.Bitfield) *download {
	l := t.mi.Layout
	d := &download{
		t:          t,
		pk:         picker.New(t.numPieces, l.PieceLength, l.Total),
		have:       wire.NewBitfield(t.numPieces),
		left:       l.Total,
		fails:      map[netip.Addr]int{},
		byPP:       map[*picker.Peer]netip.Addr{},
		results:    make(chan verifyResult),
		sem:        make(chan struct{}, verifyWorkers),
		webResults: make(chan runResult),
	}
	for i := range t.numPieces {
		if have.Has(i) {
			d.pk.SetHave(i)
			d.have.Set(i)
			d.left -= l.PieceSize(i)
		}
	}
	d.newWebSeeds(t.cfg.WebSeeds)
	return d
}

// start begins downloading under ctx (Run's): the web seeds start their first runs.
func (d *download) start(ctx context.Context) {
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.webRequest(time.Now())
}

func (d *download) progress() (have int, left int64, hashFails int) {
	return d.have.Count(), d.left, d.hashFails
}

func (d *download) peerUp(p *peer) {
	p.dl = &peerDownload{pp: d.pk.NewPeer(), slowStart: true, queue: initialPipeline}
	d.byPP[p.dl.pp] = p.addr.Addr()
}

func (d *download) peerGone(p *peer) {
	if p.dl == nil {
		return
	}
	d.pk.PeerGone(p.dl.pp)
	p.dl.reqs = nil
	// A block p was reading when it went is free again (releaseClaims), but a peer whose
	// copy of it was dropped meanwhile still has it outstanding in the picker, and Pick
	// never asks a peer twice: without this, no one would be asked for it again.
	for _, q := range d.t.peers {
		if q.dl == nil {
			continue
		}
		for _, b := range q.dl.dropped {
			d.pk.Rejected(q.dl.pp, b)
		}
		q.dl.dropped = q.dl.dropped[:0]
	}
	d.requestAll()
}

func (d *download) snubbed(p *peer) bool { return p.dl != nil && p.dl.snubbed }

// onEvent applies a peer message to the download (after the loop updated p's state).
func (d *download) onEvent(p *peer, ev event) {
	pd := p.dl
	switch ev.id {
	case wire.Have:
		d.pk.PeerHave(pd.pp, int(ev.index))
	case wire.BitfieldMsg, wire.HaveNone:
		d.pk.PeerBitfield(pd.pp, p.has.Bytes())
	case wire.HaveAll:
		d.pk.PeerHaveAll(pd.pp)
	case wire.AllowedFast:
		if !slices.Contains(pd.allowed, ev.index) {
			pd.allowed = append(pd.allowed, ev.index)
			d.pk.SetAllowedFast(pd.pp, pd.allowed)
		}
	case wire.Choke:
		if !p.fast {
			// Without BEP 6 a choke discards every pending request.
			for _, b := range pd.reqs {
				d.pk.Rejected(pd.pp, b)
			}
			pd.reqs = pd.reqs[:0]
		}
		d.requestAll() // what p dropped goes to others
		return
	case wire.Reject:
		b := picker.Block{Piece: ev.index, Begin: ev.begin, Length: ev.length}
		if i := slices.Index(pd.reqs, b); i >= 0 {
			pd.reqs = slices.Delete(pd.reqs, i, i+1)
			d.pk.Rejected(pd.pp, b)
		}
	case wire.Piece:
		d.onBlock(p, ev)
	}
	d.updateInterest(p)
	d.request(p)
}

// updateInterest sends INTERESTED or NOT INTERESTED when it changed.
func (d *download) updateInterest(p *peer) {
	want := !d.pk.Done() && d.pk.Interesting(p.dl.pp)
	if want == p.amInterested {
		return
	}
	p.amInterested = want
	if want {
		p.queueRaw([]byte{0, 0, 0, 1, byte(wire.Interested)})
	} else {
		p.queueRaw([]byte{0, 0, 0, 1, byte(wire.NotInterested)})
	}
}

// pipeline is how many blocks to keep requested from p: queueTime of its rate, at least
// minPipeline, at most its reqq (and maxPipeline). A new peer starts at initialPipeline, in
// slow start (see peerDownload).
func (d *download) pipeline(p *peer) int {
	pd := p.dl
	if pd.snubbed {
		return 1
	}
	n := pd.queue
	if !pd.slowStart {
		n = int(pd.rate * int64(queueTime) / int64(time.Second) / wire.BlockSize)
	}
	return min(max(n, minPipeline), p.reqq, maxPipeline)
}

// refill is the number of free places in a queue of n blocks that makes a new batch of
// requests worth sending: an eighth of the queue, at most maxRefill. The rest of the queue
// keeps the peer busy meanwhile.
func refill(n int) int { return min(max(n/8, 1), maxRefill) }

// request tops up p's requests.
func (d *download) request(p *peer) {
	pd := p.dl
	if pd == nil || !p.amInterested || d.pk.Done() {
		return
	}
	allowedOnly := p.peerChoking
	if allowedOnly && (!p.fast || len(pd.allowed) == 0) {
		return
	}
	n := d.pipeline(p)
	want := n - len(pd.reqs)
	if want <= 0 || len(pd.reqs) > 0 && want < refill(n) {
		return
	}
	blocks := d.pk.Pick(pd.pp, want, allowedOnly, d.scratch[:0])
	d.scratch = blocks
	if len(blocks) == 0 {
		return
	}
	if len(pd.reqs) == 0 {
		pd.lastBlock = time.Now()
	}
	msgs := d.reqBuf[:0]
	for _, b := range blocks {
		d.ensurePiece(b.Piece)
		pd.reqs = append(pd.reqs, b)
		msgs = appendTriple(msgs, wire.Request, request{b.Piece, b.Begin, b.Length})
	}
	p.queueRaw(msgs) // copies
	d.reqBuf = msgs
}

// requestAll tops up every peer (blocks came back to the pool).
func (d *download) requestAll() {
	for _, p := range d.t.peers {
		d.request(p)
	}
}

// ensurePiece makes sure piece i has a buffer readers can fill.
func (d *download) ensurePiece(i uint32) {
	c := d.t.dlState
	c.mu.Lock()
	_, ok := c.pieces[i]
	c.mu.Unlock()
	if ok {
		return
	}
	size := int(d.pk.PieceSize(int(i)))
	nb := (size + wire.BlockSize - 1) / wire.BlockSize
	var pb *pieceBuf
	if n := len(d.free); n > 0 && cap(d.free[n-1].data) >= size {
		pb, d.free = d.free[n-1], d.free[:n-1]
		pb.data, pb.state, pb.reader = pb.data[:size], pb.state[:nb], pb.reader[:nb]
		clear(pb.state)
		clear(pb.reader)
	} else {
		pb = &pieceBuf{data: make([]byte, size), state: make([]uint8, nb), reader: make([]*peer, nb)}
	}
	pb.index = i
	c.start(pb)
}

// onBlock records a block p sent.
func (d *download) onBlock(p *peer, ev event) {
	pd := p.dl
	b := picker.Block{Piece: ev.index, Begin: ev.begin, Length: ev.length}
	asked := false
	if i := slices.Index(pd.reqs, b); i >= 0 {
		pd.reqs = slices.Delete(pd.reqs, i, i+1)
		asked = true
	}
	pd.lastBlock = time.Now()
	if pd.snubbed {
		pd.snubbed = false
	}
	if pd.slowStart && pd.queue < maxPipeline {
		pd.queue++
	}
	if !ev.ok {
		// A duplicate (endgame) or a block we did not ask for: its data was dropped.
		if asked && d.pk.Wants(b) {
			pd.dropped = slices.DeleteFunc(pd.dropped, func(x picker.Block) bool { return !d.pk.Wants(x) })
			pd.dropped = append(pd.dropped, b)
		}
		return
	}
	cancel, full := d.pk.Received(pd.pp, b)
	for _, cp := range cancel {
		for _, q := range d.t.peers {
			if q.dl != nil && q.dl.pp == cp {
				if i := slices.Index(q.dl.reqs, b); i >= 0 {
					q.dl.reqs = slices.Delete(q.dl.reqs, i, i+1)
				}
				q.queueRaw(appendTriple(nil, wire.Cancel, request{b.Piece, b.Begin, b.Length}))
			}
		}
	}
	if full {
		d.verify(d.t.dlState.finish(b.Piece))
	}
}

// verify hashes and writes a complete piece off the loop; the result comes back on
// d.results.
func (d *download) verify(pb *pieceBuf) {
	if pb == nil {
		return
	}
	t := d.t
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		select {
		case d.sem <- struct{}{}:
		case <-t.quit:
			return
		}
		r := verifyResult{pb: pb}
		r.ok = resume.HashPiece(t.mi, int(pb.index), pb.data)
		if r.ok {
			if _, err := t.data.WriteAt(pb.data, t.mi.Layout.PieceOffset(int(pb.index))); err != nil {
				r.err = fmt.Errorf("session: write piece %d: %w", pb.index, err)
			}
		}
		<-d.sem
		select {
		case d.results <- r:
		case <-t.quit:
		}
	}()
}

// onVerified applies a piece check.
func (d *download) onVerified(r verifyResult) {
	t := d.t
	i := int(r.pb.index)
	d.free = append(d.free, r.pb)
	switch {
	case r.err != nil:
		t.log.Warn("piece not stored", "piece", i, "err", r.err)
		d.pk.PieceFailed(i)
	case !r.ok:
		d.hashFails++
		t.cfg.Metrics.hashFail()
		for _, pp := range d.pk.PieceFailed(i) {
			if a, ok := d.byPP[pp]; ok {
				d.fails[a]++
				if d.fails[a] >= BanThreshold {
					d.ban(a)
				}
			}
		}
	default:
		d.pieceDone(i)
	}
	d.afterPieces()
}

// pieceDone records piece i as verified and stored, and tells the peers that may want it.
func (d *download) pieceDone(i int) {
	t := d.t
	d.pk.PieceVerified(i)
	d.have.Set(i)
	t.have.set(i)
	d.left -= t.mi.Layout.PieceSize(i)
	have := []byte{0, 0, 0, 5, byte(wire.Have), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	for _, p := range t.peers {
		// A seed cannot want the piece: a HAVE would cost it a wake-up for nothing.
		if !p.has.Full() {
			p.queueRaw(have)
		}
	}
}

// afterPieces follows piece results: completion, interest, new requests, stats.
func (d *download) afterPieces() {
	t := d.t
	if d.pk.Done() && !t.complete() {
		// Stats first: whoever sees Done must see the stats of a complete torrent.
		t.updateStats(time.Now())
		t.markDone()
		d.cancel() // runs still in flight
		t.log.Info("download complete")
		for _, p := range slices.Clone(t.peers) {
			if p.has.Full() && p.utMetadata == 0 {
				t.dropPeer(p, errClosing)
			}
		}
	}
	for _, p := range t.peers {
		d.updateInterest(p)
	}
	d.prune()
	d.requestAll()
	t.updateStats(time.Now())
}

// ban drops every connection from address a and refuses it from now on.
func (d *download) ban(a netip.Addr) {
	t := d.t
	if _, ok := t.banned[a]; ok {
		return
	}
	t.banned[a] = struct{}{}
	t.cfg.Metrics.ban()
	t.log.Warn("peer banned: sent bad data", "addr", a, "failed_pieces", d.fails[a])
	for _, p := range slices.Clone(t.peers) {
		if p.addr.Addr() == a {
			t.dropPeer(p, errBanned)
		}
	}
}

// prune forgets the picker peers that are gone once no piece is in progress (nothing can
// attribute a block to them any more).
func (d *download) prune() {
	c := d.t.dlState
	c.mu.Lock()
	idle := len(c.pieces) == 0
	c.mu.Unlock()
	if !idle {
		return
	}
	live := map[*picker.Peer]bool{}
	for _, p := range d.t.peers {
		if p.dl != nil {
			live[p.dl.pp] = true
		}
	}
	for pp := range d.byPP {
		if !live[pp] {
			delete(d.byPP, pp)
		}
	}
}

// tick snubs peers that leave our requests unanswered, and tops everyone up.
func (d *download) tick(now time.Time) {
	for _, p := range d.t.peers {
		pd := p.dl
		if pd != nil {
			pd.sample(now, p.downloaded.Load())
		}
		if pd == nil || pd.snubbed || len(pd.reqs) == 0 || now.Sub(pd.lastBlock) < d.t.snubAfter {
			continue
		}
		pd.snubbed = true
		var msgs []byte
		for _, b := range pd.reqs {
			d.pk.Cancelled(pd.pp, b)
			msgs = appendTriple(msgs, wire.Cancel, request{b.Piece, b.Begin, b.Length})
		}
		pd.reqs = pd.reqs[:0]
		p.queueRaw(msgs)
		d.t.log.Debug("peer snubbed", "peer", p)
	}
	d.abandonSlowRuns(now)
	d.requestAll()
	d.webRequest(now)
}
