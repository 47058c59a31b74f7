package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/webseed"
)

// Web seeds (BEP 19). The loop hands each web seed runs of whole, contiguous pieces that no
// peer has started (picker.PickRun); a run goroutine fetches it with one Fetch, hashes and
// writes its pieces like any others, and reports back on download.webResults. Peers take
// the other pieces meanwhile.
const (
	// minRunBytes and maxRunBytes bound a run: a web server wants large requests (at least
	// a MiB), and a run holds its pieces away from peers until it ends, so it is sized to
	// about runTime of the seed's measured rate.
	minRunBytes = 1 << 20
	maxRunBytes = 8 << 20
	runTime     = 2 * time.Second
	// runTimeout bounds one run: a server that stalls must not hold its pieces for ever.
	runTimeout = 2 * time.Minute
	// runGrace: a run older than this is abandoned, its pieces given to peers, once a
	// peer that has them is idle (only reserved pieces are left): a slow web seed must
	// not hold up the end of a download peers can finish.
	runGrace = time.Second
	// webMaxFailures consecutive failed runs drop a web seed; before that each failure
	// backs off (webBackoffMin, doubling, at most webBackoffMax) and the next attempt is a
	// single run.
	webMaxFailures = 5
	webBackoffMin  = time.Second
	webBackoffMax  = time.Minute
)

// Reasons a web seed was given up (webswarm_seed_webseeds_dropped_total{reason}).
const (
	WebSeedBadURL   = "bad_url"   // not an absolute http(s) URL
	WebSeedNotFound = "not_found" // 404 or 410
	WebSeedNoRange  = "no_range"  // ignores Range on a file too large to take whole
	WebSeedBadData  = "bad_data"  // delivered a piece that failed its hash check
	WebSeedErrors   = "errors"    // webMaxFailures failures in a row
)

var webSeedDropReasons = []string{WebSeedBadURL, WebSeedNotFound, WebSeedNoRange, WebSeedBadData, WebSeedErrors}

// fetcher is what the session uses of a web seed (*webseed.Seed).
type fetcher interface {
	Fetch(ctx context.Context, dst []byte, off int64) (int, error)
	URL() string
	Close()
}

var _ fetcher = (*webseed.Seed)(nil)

// webSeed is the loop's state of one web seed.
type webSeed struct {
	f        fetcher
	maxRuns  int // runs in flight at most (the seed's connection bound)
	running  int
	failures int // in a row
	retryAt  time.Time
	dropped  bool
	rate     int64 // bytes per second of one run, from the last one that succeeded
}

// webRun is a run in flight (loop).
type webRun struct {
	ws           *webSeed
	first, count int
	started      time.Time
	cancel       context.CancelFunc
	abandoned    bool // cancelled for peers to take its pieces: not the seed's failure
}

// runResult is a finished run, reported to the loop.
type runResult struct {
	run          *webRun
	ws           *webSeed
	first, count int
	buf          []byte
	took         time.Duration
	got          int       // bytes at the start of buf the seed delivered
	err          error     // the fetch failed: only the whole pieces in buf[:got] were checked
	status       []runStat // per piece checked: all of them when the fetch succeeded
}

type runStat uint8

const (
	runGood     runStat = iota // hashed right and written
	runBadHash                 // the seed's data is wrong
	runNotSaved                // hashed right, the write failed (not the seed's fault)
)

// newWebSeeds makes the torrent's web seeds; a URL webseed refuses is logged, counted and
// skipped.
func (d *download) newWebSeeds(urls []string) {
	t := d.t
	for _, u := range urls {
		s, err := webseed.New(u, t.mi, webseed.Options{Client: t.cfg.HTTP, UserAgent: "webswarm/" + t.cfg.Version})
		if err != nil {
			t.cfg.Metrics.webSeedDropped(WebSeedBadURL)
			t.log.Warn("web seed ignored", "url", u, "err", err)
			continue
		}
		d.web = append(d.web, &webSeed{f: s, maxRuns: webseed.DefaultMaxConns})
	}
}

// closeWebSeeds releases the web seeds' idle connections (Run's end, after every run
// goroutine has stopped).
func (d *download) closeWebSeeds() {
	for _, ws := range d.web {
		ws.f.Close()
	}
}

// webRequest starts runs on every web seed with room for one.
func (d *download) webRequest(now time.Time) {
	if d.ctx == nil || d.pk.Done() {
		return
	}
	for _, ws := range d.web {
		limit := ws.maxRuns
		if ws.failures > 0 {
			limit = 1 // probing after a failure
		}
		for !ws.dropped && ws.running < limit && !now.Before(ws.retryAt) {
			first, count, ok := d.pk.PickRun(d.runPieces(ws))
			if !ok {
				return
			}
			d.startRun(ws, first, count)
		}
	}
}

// runPieces is the run length in pieces for ws: runTime of its rate, within the bounds.
func (d *download) runPieces(ws *webSeed) int {
	want := min(max(ws.rate*int64(runTime/time.Millisecond)/1000, minRunBytes), maxRunBytes)
	pl := d.t.mi.Layout.PieceLength
	return int(max((want+pl-1)/pl, 1))
}

func (d *download) startRun(ws *webSeed, first, count int) {
	t := d.t
	l := t.mi.Layout
	off := l.PieceOffset(first)
	n := int(l.PieceOffset(first+count-1) + l.PieceSize(first+count-1) - off)
	var buf []byte
	if k := len(d.runFree); k > 0 && cap(d.runFree[k-1]) >= n {
		buf, d.runFree = d.runFree[k-1][:n], d.runFree[:k-1]
	} else {
		buf = make([]byte, n)
	}
	ws.running++
	ctx, cancel := context.WithTimeout(d.ctx, runTimeout)
	run := &webRun{ws: ws, first: first, count: count, started: time.Now(), cancel: cancel}
	d.runs = append(d.runs, run)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer cancel()
		r := runResult{run: run, ws: ws, first: first, count: count, buf: buf}
		start := time.Now()
		r.got, r.err = d.fetchRun(ctx, ws.f, buf, off)
		r.took = time.Since(start)
		// A run that failed or was abandoned keeps the whole pieces it delivered.
		if k := d.wholePieces(first, count, r.got); k > 0 {
			r.status = d.checkRun(first, k, buf)
		}
		select {
		case d.webResults <- r:
		case <-t.quit:
		}
	}()
}

// fetchRun fetches buf at stream offset off (run goroutine), within the download caps, and
// returns how many bytes at its start it filled.
func (d *download) fetchRun(ctx context.Context, f fetcher, buf []byte, off int64) (int, error) {
	if err := d.t.waitDownload(ctx, len(buf)); err != nil {
		return 0, err
	}
	n, err := f.Fetch(ctx, buf, off)
	if err != nil {
		return n, fmt.Errorf("session: web seed %s: %w", f.URL(), err)
	}
	return n, nil
}

// wholePieces is how many pieces of the run of count pieces from first lie whole in the
// first got bytes of its buffer.
func (d *download) wholePieces(first, count, got int) int {
	l := d.t.mi.Layout
	base := l.PieceOffset(first)
	k := 0
	for k < count && l.PieceOffset(first+k)+l.PieceSize(first+k)-base <= int64(got) {
		k++
	}
	return k
}

// checkRun hashes and writes every piece of a fetched run (run goroutine), sharing the
// verification slots with the peers' pieces.
func (d *download) checkRun(first, count int, buf []byte) []runStat {
	t := d.t
	l := t.mi.Layout
	st := make([]runStat, count)
	base := l.PieceOffset(first)
	for k := range count {
		i := first + k
		off := l.PieceOffset(i)
		data := buf[off-base : off-base+l.PieceSize(i)]
		select {
		case d.sem <- struct{}{}:
		case <-t.quit:
			st[k] = runNotSaved
			continue
		}
		switch {
		case !resume.HashPiece(t.mi, i, data):
			st[k] = runBadHash
		default:
			if _, err := t.data.WriteAt(data, off); err != nil {
				st[k] = runNotSaved
				t.log.Warn("piece not stored", "piece", i, "err", err)
			}
		}
		<-d.sem
	}
	return st
}

// onRun applies a finished run.
func (d *download) onRun(r runResult) {
	ws := r.ws
	ws.running--
	if i := slices.Index(d.runs, r.run); i >= 0 {
		d.runs = slices.Delete(d.runs, i, i+1)
	}
	now := time.Now()
	bad := d.applyRun(r)
	if bad > 0 {
		d.dropWebSeed(ws, WebSeedBadData, fmt.Errorf("%d of %d pieces from it failed their hash check", bad, len(r.status)))
	}
	if r.err != nil {
		d.pk.RunFailed(r.first, r.count) // what it did not deliver goes to peers
		d.runFree = append(d.runFree, r.buf)
		if len(r.status) > 0 {
			d.afterPieces()
		}
		if r.run.abandoned {
			// Peers first; the seed gets new runs at the next tick, from what is left.
			d.requestAll()
			return
		}
		if d.ctx.Err() == nil && !d.pk.Done() {
			d.webFailed(ws, now, r.err)
		}
		d.webRequest(now)
		d.requestAll()
		return
	}
	if r.took > 0 {
		ws.rate = int64(float64(len(r.buf)) / r.took.Seconds())
	}
	d.pk.RunDone(r.first, r.count)
	d.runFree = append(d.runFree, r.buf)
	if bad == 0 {
		ws.failures, ws.retryAt = 0, time.Time{}
	}
	d.afterPieces()
	d.webRequest(now)
}

// applyRun applies the checks of a run's pieces (all of them, or those a failed run
// delivered whole), counts the bytes the seed delivered, and returns how many pieces failed
// their hash check.
func (d *download) applyRun(r runResult) (bad int) {
	t := d.t
	n := int64(r.got)
	t.downloaded.Add(n)
	t.cfg.Metrics.addDownloaded(n)
	t.cfg.Metrics.addWebSeed(n)
	for k, s := range r.status {
		i := r.first + k
		switch s {
		case runGood:
			d.pieceDone(i)
		case runBadHash:
			bad++
			d.hashFails++
			t.cfg.Metrics.hashFail()
			d.pk.PieceFailed(i)
		case runNotSaved:
			d.pk.PieceFailed(i)
		}
	}
	return bad
}

// webFailed classifies a failed run: a seed that cannot serve this torrent is dropped,
// anything else is retried after a back-off until webMaxFailures in a row.
func (d *download) webFailed(ws *webSeed, now time.Time, err error) {
	switch {
	case errors.Is(err, webseed.ErrNotFound):
		d.dropWebSeed(ws, WebSeedNotFound, err)
	case errors.Is(err, webseed.ErrNoRange):
		d.dropWebSeed(ws, WebSeedNoRange, err)
	default:
		ws.failures++
		if ws.failures >= webMaxFailures {
			d.dropWebSeed(ws, WebSeedErrors, err)
			return
		}
		backoff := min(d.t.webBackoff<<(ws.failures-1), webBackoffMax)
		ws.retryAt = now.Add(backoff)
		d.t.log.Info("web seed failed, retrying", "url", ws.f.URL(), "failures", ws.failures, "retry_in", backoff, "err", err)
	}
}

// abandonSlowRuns cancels the runs older than runGrace whose pieces an idle peer (unchoked,
// nothing requested: it has nothing else to give) has, so it can fetch them instead.
func (d *download) abandonSlowRuns(now time.Time) {
	for _, run := range d.runs {
		if run.abandoned || now.Sub(run.started) < runGrace {
			continue
		}
		for _, p := range d.t.peers {
			if pd := p.dl; pd != nil && !p.peerChoking && len(pd.reqs) == 0 && d.pk.PeerHas(pd.pp, run.first) {
				run.abandoned = true
				run.cancel()
				d.t.log.Debug("web seed run abandoned to peers", "url", run.ws.f.URL(), "first", run.first, "count", run.count)
				break
			}
		}
	}
}

func (d *download) dropWebSeed(ws *webSeed, reason string, err error) {
	if ws.dropped {
		return
	}
	ws.dropped = true
	d.t.cfg.Metrics.webSeedDropped(reason)
	d.t.log.Warn("web seed dropped", "url", ws.f.URL(), "reason", reason, "err", err)
}
