package announcer

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Status is what the Announcer last heard from its trackers.
type Status struct {
	// URL is the tracker of the last attempt: the one that answered, or the last one tried.
	URL string
	// LastAnnounce is when the last attempt ended; NextAnnounce when the next is due.
	LastAnnounce, NextAnnounce time.Time
	// Seeders, Leechers and Downloaded are the tracker's counts (Downloaded: HTTP trackers
	// that send it).
	Seeders, Leechers, Downloaded int
	// Failure is the tracker's failure reason (or UDP error message) when the last round
	// failed with one; Warning the warning message of the last reply.
	Failure, Warning string
	// Err is the last round's error (nil after a success).
	Err error
	// Failures counts consecutive failed rounds.
	Failures int
	// Peers is the number of peers in the last reply.
	Peers int
}

// tracker is one URL of the announce-list.
type tracker struct {
	raw  string
	u    *url.URL
	name string   // redacted, for logs and errors
	udp  *udpConn // nil for HTTP(S)

	// Guarded by Announcer.mu.
	registered bool   // the tracker knows us, or may: it answered an announce, or one it got was cut off by Stop; no stopped yet
	trackerID  string // BEP 3 "tracker id", echoed
}

// completion states.
const (
	notCompleted = iota
	completing
	completedSent
)

// An Announcer announces one torrent to its trackers. Its methods are safe for concurrent
// use.
//
// An agent holds one for each of tens of thousands of idle torrents, driven by Step: the
// channels only Run needs are made by Run or Peers (about 360 bytes), and the fields are in
// an order that keeps the struct in the 512-byte size class.
type Announcer struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// peers, wake and runDone are nil until Run or Peers makes them (under mu); then they
	// never change.
	peers                 chan []netip.AddrPort
	wake                  chan struct{}
	runDone               chan struct{}
	rnd                   *rand.Rand
	tiers                 [][]*tracker // order changes as trackers are promoted
	st                    Status
	interval, minInterval time.Duration // in force
	last, next            time.Time     // end of the last attempt; when the next is due
	completed             int
	cancelRun             context.CancelFunc
	key                   uint32
	early                 bool // Announce was called
	completedNow          bool
	running, stopped      bool
}

// New validates cfg and returns an Announcer; nothing is sent before Run. An unusable
// tracker URL is an error wrapping ErrBadURL that names it. WebSocket trackers (ws://,
// wss://: WebTorrent's, which torrents published for browsers list in a tier of their own)
// are skipped; a torrent that lists nothing else has no tracker URL for an Announcer.
func New(cfg Config) (*Announcer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	// A PCG (16 bytes) rather than ChaCha8 (300), and the info-hash added to each log line
	// rather than a Logger.With clone: an agent holds an Announcer for each of tens of
	// thousands of torrents, and these two were a third of its heap.
	var seed [16]byte
	crand.Read(seed[:])
	a := &Announcer{
		cfg:      cfg,
		log:      cfg.Logger,
		rnd:      rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		interval: cfg.Interval,
	}
	a.key = a.rnd.Uint32()
	seen := make(map[string]bool)
	for _, tier := range cfg.Tiers {
		var ts []*tracker
		for _, raw := range tier {
			if seen[raw] {
				continue
			}
			seen[raw] = true
			if isWebSocketTracker(raw) {
				continue // for browsers (WebTorrent): seedctl has no WebRTC to offer yet
			}
			u, err := parseTrackerURL(raw)
			if err != nil {
				return nil, fmt.Errorf("announcer: %w", err)
			}
			t := &tracker{raw: raw, u: u, name: redact(u)}
			if t.name == raw {
				t.name = raw // no secret to hide: share raw's bytes rather than keep a copy
			}
			if u.Scheme == "udp" {
				t.udp = newUDPConn(u, cfg.UDPTimeout, cfg.UDPRetries)
			}
			ts = append(ts, t)
		}
		if len(ts) == 0 {
			continue
		}
		// BEP 12: shuffle each tier once.
		a.rnd.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		a.tiers = append(a.tiers, ts)
	}
	if len(a.tiers) == 0 {
		return nil, fmt.Errorf("announcer: no tracker URL: %w", ErrBadURL)
	}
	return a, nil
}

// Peers delivers the peers of each reply, never one of Config.Self; it is closed when Run
// returns. Sending never blocks the Announcer: while a batch waits unread, later ones are
// merged into it (at most 2000 peers, the newest kept).
func (a *Announcer) Peers() <-chan []netip.AddrPort {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.makeRunChans()
	return a.peers
}

// makeRunChans makes the channels of Run once (under mu).
func (a *Announcer) makeRunChans() {
	if a.peers == nil {
		a.peers = make(chan []netip.AddrPort, 1)
		a.wake = make(chan struct{}, 1)
		a.runDone = make(chan struct{})
	}
}

// Status returns what the Announcer last heard.
func (a *Announcer) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}

// Announce asks for an announce before the interval is up; it is sent once the tracker's
// min interval has passed since the last one (not during back-off after failures).
func (a *Announcer) Announce() {
	a.mu.Lock()
	a.early = true
	wake := a.wake
	a.mu.Unlock()
	signal(wake)
}

// Completed sends event=completed now (or as soon as the announce in progress ends). Only
// the first call counts.
func (a *Announcer) Completed() {
	a.mu.Lock()
	if a.completed == notCompleted {
		a.completed, a.completedNow = completing, true
	}
	wake := a.wake
	a.mu.Unlock()
	signal(wake)
}

// signal wakes Run, if it runs (wake is nil before Run: it looks at what is due when it
// starts).
func signal(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// Run announces "started", then once per interval, until ctx is done or Stop is called; it
// closes the Peers channel when it returns. Calls after the first return at once.
func (a *Announcer) Run(ctx context.Context) {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return
	}
	a.running = true
	a.makeRunChans()
	if a.stopped {
		a.mu.Unlock()
		close(a.peers)
		close(a.runDone)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	a.cancelRun = cancel
	a.mu.Unlock()
	defer func() {
		cancel()
		a.closeUDP()
		close(a.peers) // only Run sends on it
		close(a.runDone)
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if d := time.Until(a.due(time.Now())); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
			case <-timer.C:
			}
			continue
		}
		a.deliver(a.round(ctx))
		if ctx.Err() != nil {
			return
		}
	}
}

// Step is Run's body for a caller that drives many Announcers from one scheduler instead of
// a goroutine each: when an announce is due it sends it (the round of BEP 12 tiers, as Run
// does) and returns the peers of the reply; it always returns when the next one is due. A
// Step cut short by ctx counts neither as an answer nor as a failure. Step must not be used
// together with Run, nor concurrently with itself; after Stop it sends nothing and returns
// the zero time.
func (a *Announcer) Step(ctx context.Context) (peers []netip.AddrPort, next time.Time) {
	a.mu.Lock()
	stopped := a.stopped
	a.mu.Unlock()
	if stopped {
		return nil, time.Time{}
	}
	if now := time.Now(); !a.due(now).After(now) {
		peers = a.round(ctx)
	}
	return peers, a.due(time.Now())
}

// due returns when the next announce should be sent.
func (a *Announcer) due(now time.Time) time.Time {
	a.mu.Lock()
	if a.completedNow || a.last.IsZero() {
		a.mu.Unlock()
		return now
	}
	if a.st.Failures > 0 {
		defer a.mu.Unlock()
		return a.next
	}
	due, earliest, minInterval := a.next, a.last.Add(a.minInterval), a.minInterval
	if a.early {
		due = minTime(due, maxTime(earliest, now))
	}
	a.mu.Unlock()
	if a.cfg.MinPeers > 0 {
		switch {
		case now.Before(earliest):
			due = minTime(due, earliest)
		case a.cfg.PeerCount() < a.cfg.MinPeers:
			due = now
		default:
			// Look again later: peers come and go.
			due = minTime(due, now.Add(max(minInterval, time.Second)))
		}
	}
	return due
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// round announces once, BEP 12's way: tier by tier, each tracker of a tier in order, until
// one answers. It returns the peers of the answer.
func (a *Announcer) round(ctx context.Context) []netip.AddrPort {
	a.mu.Lock()
	a.completedNow, a.early = false, false
	complete := a.completed == completing
	tiers := make([][]*tracker, len(a.tiers))
	for i, t := range a.tiers {
		tiers[i] = append([]*tracker(nil), t...)
	}
	a.mu.Unlock()
	prog := a.cfg.Progress()
	var lastErr error
	var lastTr *tracker
	for ti, tier := range tiers {
		for _, tr := range tier {
			r := a.newRequest(tr, complete, prog)
			rep, err := a.announceTo(ctx, tr, r)
			if ctx.Err() != nil {
				// Cancelled (Stop): neither a failure nor an answer to act on. But an
				// announce that went out may have reached the tracker, which then counts
				// us until it hears "stopped": Stop must send it.
				if err == nil || r.sent.Load() {
					a.mu.Lock()
					tr.registered = true
					a.mu.Unlock()
				}
				return nil
			}
			if err == nil {
				return a.succeeded(ti, tr, r, rep)
			}
			a.log.Debug("announce failed", "info_hash", logHash(a.cfg.InfoHash), "tracker", tr.name, "event", r.event, "err", err)
			lastErr, lastTr = err, tr
		}
	}
	a.failed(lastTr, lastErr)
	return nil
}

// newRequest makes the request for tr: "completed" when pending, "started" to a tracker
// that does not know us yet, else a regular announce.
func (a *Announcer) newRequest(tr *tracker, complete bool, prog Progress) *request {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := &request{progress: prog, numWant: a.cfg.NumWant, key: a.key, trackerID: tr.trackerID}
	switch {
	case complete:
		r.event = evCompleted
	case !tr.registered:
		r.event = evStarted
	}
	return r
}

// announceTo sends r to tr.
func (a *Announcer) announceTo(ctx context.Context, tr *tracker, r *request) (*reply, error) {
	var rep *reply
	var err error
	if tr.udp != nil {
		rep, err = a.udpAnnounce(ctx, tr, r)
	} else {
		rep, err = a.httpAnnounce(ctx, tr.raw, r)
	}
	if err != nil {
		return nil, fmt.Errorf("announce %s to %s: %w", r.event, tr.name, err)
	}
	return rep, nil
}

// succeeded records tr's reply, promotes tr to the front of tier ti (BEP 12) and returns
// the peers.
func (a *Announcer) succeeded(ti int, tr *tracker, r *request, rep *reply) []netip.AddrPort {
	peers := cleanPeers(rep.peers, a.cfg.Self)
	now := time.Now()
	a.mu.Lock()
	tier := a.tiers[ti]
	for i, t := range tier {
		if t == tr {
			copy(tier[1:i+1], tier[:i])
			tier[0] = tr
			break
		}
	}
	tr.registered = true
	if rep.trackerID != "" {
		tr.trackerID = rep.trackerID
	}
	if r.event == evCompleted {
		a.completed = completedSent
	}
	// Without a min interval (BEP 15 has none), half the interval, as our tracker's default.
	// A tracker whose interval is under its min interval gets the min interval.
	a.interval = cmp.Or(rep.interval, a.cfg.Interval)
	a.minInterval = cmp.Or(rep.minInterval, a.interval/2)
	a.interval = max(a.interval, a.minInterval)
	// Jitter: up to a tenth earlier, so that torrents started together drift apart.
	next := a.interval - time.Duration(a.rnd.Int64N(int64(a.interval/10)+1))
	a.last, a.next = now, now.Add(max(next, a.minInterval))
	interval := a.interval
	warned := rep.warning != "" && rep.warning != a.st.Warning
	recovered := a.st.Failures > 0
	a.st = Status{
		URL:          tr.raw,
		LastAnnounce: now,
		NextAnnounce: a.next,
		Seeders:      rep.seeders,
		Leechers:     rep.leechers,
		Downloaded:   rep.downloaded,
		Warning:      rep.warning,
		Peers:        len(peers),
	}
	a.mu.Unlock()
	if warned {
		a.log.Warn("tracker warning", "info_hash", logHash(a.cfg.InfoHash), "tracker", tr.name, "warning", rep.warning)
	}
	if recovered {
		a.log.Debug("tracker answering again", "info_hash", logHash(a.cfg.InfoHash), "tracker", tr.name)
	}
	a.log.Debug("announced", "info_hash", logHash(a.cfg.InfoHash), "tracker", tr.name, "event", r.event, "peers", len(peers),
		"seeders", rep.seeders, "leechers", rep.leechers, "interval", interval)
	return peers
}

// failed records a round in which no tracker answered and schedules a retry: exponential
// back-off from Config.Backoff, capped at the interval, with jitter (half to all of it).
func (a *Announcer) failed(tr *tracker, err error) {
	now := time.Now()
	a.mu.Lock()
	a.st.Failures++
	n := a.st.Failures
	d := a.cfg.Backoff << min(n-1, 30)
	if d <= 0 || d > a.interval {
		d = a.interval
	}
	d = d/2 + time.Duration(a.rnd.Int64N(int64(d/2)+1))
	a.last, a.next = now, now.Add(d)
	a.st.URL, a.st.LastAnnounce, a.st.NextAnnounce, a.st.Err = tr.raw, now, a.next, err
	a.st.Failure = ""
	var fe *FailureError
	if errors.As(err, &fe) {
		a.st.Failure = fe.Reason
	}
	a.mu.Unlock()
	if n == 1 {
		a.log.Warn("no tracker answered", "info_hash", logHash(a.cfg.InfoHash), "tracker", tr.name, "err", err, "retry_in", d)
	} else {
		a.log.Debug("no tracker answered", "info_hash", logHash(a.cfg.InfoHash), "tracker", tr.name, "err", err, "failures", n, "retry_in", d)
	}
}

// deliver hands peers to the reader of Peers without blocking: a batch still waiting is
// taken back and merged. Only the Run loop sends, so the second send finds room.
func (a *Announcer) deliver(peers []netip.AddrPort) {
	if len(peers) == 0 {
		return
	}
	select {
	case a.peers <- peers:
		return
	default:
	}
	select {
	case old := <-a.peers:
		peers = mergePeers(old, peers)
	default:
	}
	select {
	case a.peers <- peers:
	default:
	}
}

// Stop ends Run and sends event=stopped, in parallel, to every tracker that has this peer
// registered, within ctx. It returns the failures joined; later calls do nothing.
func (a *Announcer) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	cancel, runDone := a.cancelRun, a.runDone
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-runDone:
		case <-ctx.Done():
			return fmt.Errorf("announcer: stop: waiting for Run: %w", ctx.Err())
		}
	}
	defer a.closeUDP()
	var targets []*tracker
	var reqs []*request
	prog := a.cfg.Progress()
	a.mu.Lock()
	for _, tier := range a.tiers {
		for _, tr := range tier {
			if tr.registered {
				tr.registered = false
				targets = append(targets, tr)
				reqs = append(reqs, &request{event: evStopped, progress: prog, key: a.key, trackerID: tr.trackerID})
			}
		}
	}
	a.mu.Unlock()
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tr := range targets {
		wg.Go(func() {
			if _, err := a.announceTo(ctx, tr, reqs[i]); err != nil {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		a.log.Debug("stopped not acknowledged", "info_hash", logHash(a.cfg.InfoHash), "err", err)
		return fmt.Errorf("announcer: %w", err)
	}
	return nil
}

// closeUDP closes every UDP tracker socket.
func (a *Announcer) closeUDP() {
	var udp []*udpConn
	a.mu.Lock()
	for _, tier := range a.tiers {
		for _, tr := range tier {
			if tr.udp != nil {
				udp = append(udp, tr.udp)
			}
		}
	}
	a.mu.Unlock()
	for _, u := range udp {
		u.close()
	}
}

// logHash is an info-hash in a log line, formatted (hex) only when the line is written.
type logHash bittorrent.InfoHash

// LogValue is the info-hash in hex.
func (h logHash) LogValue() slog.Value { return slog.StringValue(bittorrent.InfoHash(h).String()) }
