package session

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// DefaultPayloadCheckInterval is how often a seeding torrent stats its payload files when
// Config.PayloadCheckInterval is 0: the fallback behind file notifications (PayloadChanged),
// which may be lost or unavailable.
const DefaultPayloadCheckInterval = 2 * time.Second

// payloadWatch is what a torrent does about its payload changing under it: the pieces of
// a changed file stop being served at once and are hashed again in the background; those
// that still match their hash come back (a HAVE to every peer), the others stay missing.
// It runs only for a torrent complete at start (a seed): a download checks what it writes.
type payloadWatch struct {
	files   *storage.Files
	every   time.Duration // poll interval; not positive: only when nudged
	last    time.Time
	nudge   chan struct{} // cap 1: PayloadChanged
	changes []storage.Change
	failing bool // the last Changes failed (logged once)

	// gen[i] counts invalidations of piece i: a result for an older generation is stale.
	gen     []uint32
	pending []int // pieces to hash again, in order
	queued  []bool
	running bool
	results chan recheckResult
}

// recheckResult is one piece hashed again.
type recheckResult struct {
	index int
	gen   uint32
	ok    bool
	done  bool // the worker's last message: it has stopped
}

// PayloadChanged tells the torrent that its payload files may have changed (a file
// notification): it checks them at its next turn rather than at the next poll. It never
// blocks.
func (t *Torrent) PayloadChanged() {
	if t.pw == nil {
		return
	}
	select {
	case t.pw.nudge <- struct{}{}:
	default:
	}
}

// newPayloadWatch returns the watch of a torrent complete at start, nil otherwise.
func newPayloadWatch(data payload, every time.Duration) *payloadWatch {
	f, ok := data.(*storage.Files)
	if !ok {
		return nil
	}
	if every == 0 {
		every = DefaultPayloadCheckInterval
	}
	return &payloadWatch{files: f, every: every, nudge: make(chan struct{}, 1), results: make(chan recheckResult, 16)}
}

// nudged is the channel PayloadChanged rings, nil (never ready) without a watch.
func (t *Torrent) nudged() <-chan struct{} {
	if t.pw == nil {
		return nil
	}
	return t.pw.nudge
}

// rechecked is the channel of the re-hashing worker, nil without a watch.
func (t *Torrent) rechecked() <-chan recheckResult {
	if t.pw == nil {
		return nil
	}
	return t.pw.results
}

// pollPayload checks the payload when the poll interval has passed, or when a file
// changed so recently that it must be looked at again (storage.Files.Racy); loop, every
// tick.
func (t *Torrent) pollPayload(now time.Time) {
	if t.pw != nil && (t.pw.every > 0 && now.Sub(t.pw.last) >= t.pw.every || t.pw.files.Racy()) {
		t.checkPayload(now)
	}
}

// checkPayload stats the payload files and invalidates the pieces of those that changed
// (loop).
func (t *Torrent) checkPayload(now time.Time) {
	w := t.pw
	w.last = now
	var err error
	w.changes, err = w.files.Changes(w.changes[:0])
	if err != nil {
		if !w.failing { // once, not at every poll
			t.log.Warn("payload files cannot be checked for changes", "err", err)
		}
		w.failing = true
		return
	}
	w.failing = false
	if len(w.changes) == 0 {
		return
	}
	if w.gen == nil {
		w.gen = make([]uint32, t.numPieces)
		w.queued = make([]bool, t.numPieces)
	}
	l := t.mi.Layout
	invalid := 0
	for _, c := range w.changes {
		first, end := l.FilePieces(c.File)
		lost := 0
		for i := first; i < end; i++ {
			if t.have.has(uint32(i)) {
				t.have.clear(i)
				lost++
			}
			w.gen[i]++
			if !w.queued[i] {
				w.queued[i] = true
				w.pending = append(w.pending, i)
			}
		}
		invalid += lost
		if c.Again {
			t.cfg.Metrics.payloadChange(0, lost)
			t.log.Info("payload file quiet after a change: hashing it once more",
				"file", w.files.Path(c.File), "pieces", end-first, "were_held", lost)
			continue
		}
		t.cfg.Metrics.payloadChange(c.Kind, lost)
		t.log.Warn("payload file changed: its pieces are not served until hashed again",
			"file", w.files.Path(c.File), "change", c.Kind.String(), "pieces", end-first, "were_held", lost)
	}
	// The pieces are out of the have-set before the files' new states become the ones a
	// resume record vouches for (Files.Stamps), so a record never pairs them.
	w.files.Rebase(w.changes)
	if invalid > 0 {
		for _, p := range t.peers {
			p.dropRequests(t.have)
		}
	}
	t.startRecheck()
	t.updateStats(now)
}

// startRecheck starts the worker on the pending pieces unless it runs (loop).
func (t *Torrent) startRecheck() {
	w := t.pw
	if w.running || len(w.pending) == 0 {
		return
	}
	jobs := make([]recheckResult, len(w.pending))
	for k, i := range w.pending {
		jobs[k] = recheckResult{index: i, gen: w.gen[i]}
		w.queued[i] = false
	}
	w.pending = w.pending[:0]
	w.running = true
	t.wg.Add(1)
	go t.recheck(t.ctx, jobs)
}

// recheck hashes the pieces of jobs from disk, one at a time, and reports each to the loop.
func (t *Torrent) recheck(ctx context.Context, jobs []recheckResult) {
	defer t.wg.Done()
	send := func(r recheckResult) bool {
		select {
		case t.pw.results <- r:
			return true
		case <-t.quit:
			return false
		}
	}
	var buf []byte
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		size := int(t.mi.Layout.PieceSize(j.index))
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		b := buf[:size]
		_, err := t.data.ReadAt(b, t.mi.Layout.PieceOffset(j.index))
		j.ok = err == nil && t.mi.CheckPiece(j.index, b)
		if !send(j) {
			return
		}
	}
	send(recheckResult{done: true})
}

// onRechecked takes a result of the worker (loop).
func (t *Torrent) onRechecked(r recheckResult) {
	w := t.pw
	if r.done {
		w.running = false
		t.startRecheck()
		if !w.running {
			t.log.Warn("changed payload hashed again", "pieces", t.have.count(), "of", t.numPieces)
		}
		t.updateStats(time.Now())
		return
	}
	if r.gen != w.gen[r.index] || w.queued[r.index] {
		return // changed again meanwhile: queued for another check
	}
	t.cfg.Metrics.pieceRechecked(r.ok)
	if !r.ok {
		return
	}
	t.have.set(r.index)
	i := r.index
	have := []byte{0, 0, 0, 5, byte(wire.Have), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	for _, p := range t.peers {
		if !p.has.Full() {
			p.queueRaw(have)
		}
	}
}

// rechecking reports whether pieces of changed files wait to be hashed again (loop).
func (t *Torrent) rechecking() bool {
	return t.pw != nil && (t.pw.running || len(t.pw.pending) > 0)
}

// dropRequests removes the queued requests for pieces have no longer holds: a Fast peer
// gets a REJECT for each (BEP 6), another a CHOKE and UNCHOKE, which makes it forget
// them (BEP 3) and ask again for what it still wants (loop).
func (p *peer) dropRequests(have *atomicBits) {
	p.mu.Lock()
	kept := p.queue[:p.qhead]
	dropped := false
	for _, r := range p.queue[p.qhead:] {
		if have.has(r.index) {
			kept = append(kept, r)
			continue
		}
		dropped = true
		if p.fast {
			p.out = appendTriple(p.out, wire.Reject, r)
		}
	}
	p.queue = kept
	if dropped && !p.fast && !p.choking {
		p.out = append(p.out, 0, 0, 0, 1, byte(wire.Choke), 0, 0, 0, 1, byte(wire.Unchoke))
	}
	p.mu.Unlock()
	if dropped {
		p.signal()
	}
}

// readFailed is told of a failed read of a block for a peer (writer goroutines): when the
// error says the payload changed under the torrent, it checks at once rather than at the
// next poll.
func (t *Torrent) readFailed(err error) {
	if errors.Is(err, storage.ErrChanged) || errors.Is(err, storage.ErrShort) || errors.Is(err, fs.ErrNotExist) {
		t.PayloadChanged()
	}
}

// unheld answers a request taken from the queue for a piece no longer held (its file
// changed since): a REJECT for a Fast peer, nothing for another (its CHOKE is on the way,
// see dropRequests). Writer goroutine.
func (p *peer) unheld(out []byte, r request) []byte {
	if p.fast {
		out = appendTriple(out, wire.Reject, r)
	}
	return out
}

// payloadMetrics count payload changes found while seeding.
type payloadMetrics struct {
	changes     *prometheus.CounterVec
	changesBy   map[storage.ChangeKind]prometheus.Counter
	invalidated prometheus.Counter
	rechecked   *prometheus.CounterVec
	good, bad   prometheus.Counter
}

func newPayloadMetrics(reg prometheus.Registerer) payloadMetrics {
	m := payloadMetrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_payload_changes_total",
			Help: "Payload files found changed while seeding, by kind (modified, truncated, deleted, replaced).",
		}, []string{"kind"}),
		invalidated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_seed_pieces_invalidated_total",
			Help: "Verified pieces no longer served because their file changed.",
		}),
		rechecked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_pieces_rechecked_total",
			Help: "Pieces of changed files hashed again, by result (good: served again, bad: stays missing).",
		}, []string{"result"}),
		changesBy: map[storage.ChangeKind]prometheus.Counter{},
	}
	for _, k := range storage.ChangeKinds {
		m.changesBy[k] = m.changes.WithLabelValues(k.String())
	}
	m.good = m.rechecked.WithLabelValues("good")
	m.bad = m.rechecked.WithLabelValues("bad")
	if reg != nil {
		reg.MustRegister(m.changes, m.invalidated, m.rechecked)
	}
	return m
}

// payloadChange counts a change of kind k (0: a file looked at again, not a change) that
// took invalidated pieces out of the have-set.
func (m *Metrics) payloadChange(k storage.ChangeKind, invalidated int) {
	if m != nil {
		if k != 0 {
			m.payload.changesBy[k].Inc()
		}
		m.payload.invalidated.Add(float64(invalidated))
	}
}

func (m *Metrics) pieceRechecked(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.payload.good.Inc()
	} else {
		m.payload.bad.Inc()
	}
}
