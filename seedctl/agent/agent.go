package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

var _ Controller = (*Agent)(nil)

// sessionWait bounds how long an incoming connection (or a batch of tracker peers) waits for
// a torrent's session to start: a check that trusts a clean record takes milliseconds.
const sessionWait = 10 * time.Second

// Agent seeds every torrent under a directory. Create it with New, run it with Run; its
// Controller methods are safe for concurrent use, before and during Run.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	lock    *os.File
	l       net.Listener
	port    uint16
	wcfg    *wire.Config
	scfg    session.Config
	pw      *job.Watcher // payload file notifications; nil with NoWatch
	sched   *scheduler
	metrics *metrics
	started time.Time

	rescan    chan struct{}
	checkWake chan struct{}
	ctx       context.Context // Run's, for sessions; set before Run starts anything
	sessions  sync.WaitGroup  // running sessions and stopped announces of removed torrents

	checksTrusted, checksHashed atomic.Int64

	mu       sync.Mutex
	byHash   map[bittorrent.InfoHash]*torrent
	byPath   map[string]*torrent
	seen     map[string]seenFile // .torrent files found in Dir
	checkQ   []*torrent
	seeding  int // torrents holding a max-active slot
	seq      uint64
	closing  bool
	checking int  // checks in progress
	scanned  bool // the first scan is done
	settled  bool // the start-up checks are done (logged once)
	persist  persistent
	hashList []bittorrent.InfoHash // for incoming MSE; rebuilt when nil
}

// New checks cfg, takes the state directory's lock (ErrLocked when another agent holds it)
// and listens for peers. Nothing else happens until Run; Close releases what New took when
// Run is never called.
func New(cfg Config) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	lock, err := lockState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:       cfg,
		log:       cfg.Logger,
		lock:      lock,
		rescan:    make(chan struct{}, 1),
		checkWake: make(chan struct{}, 1),
		byHash:    make(map[bittorrent.InfoHash]*torrent),
		byPath:    make(map[string]*torrent),
		seen:      make(map[string]seenFile),
		started:   time.Now(),
	}
	if a.persist, err = loadPersistent(a.statePath()); err != nil {
		a.log.Error("agent state unreadable; starting without it", "path", a.statePath(), "err", err)
	}
	a.l = cfg.Listener
	if a.l == nil {
		if a.l, err = net.Listen("tcp", cfg.Listen); err != nil {
			unlock(lock)
			return nil, fmt.Errorf("listen for peers: %w", err)
		}
	}
	if ta, ok := a.l.Addr().(*net.TCPAddr); ok {
		a.port = uint16(ta.Port)
	}
	a.wcfg = &wire.Config{
		PeerID:     cfg.PeerID,
		Reserved:   wire.DefaultReserved,
		Encryption: cfg.Encryption,
		Known:      a.known,
		InfoHashes: a.infoHashes,
	}
	var up *rate.Limiter
	if cfg.UploadRate > 0 {
		up = rate.NewLimiter(rate.Limit(cfg.UploadRate), max(cfg.UploadRate/4, 256<<10))
	}
	a.metrics = newMetrics(a, cfg.Registry)
	a.scfg = session.Config{
		PeerID:            cfg.PeerID,
		ListenPort:        a.port,
		Wire:              a.wcfg,
		Dialer:            cfg.Dialer,
		MaxUploads:        cfg.MaxUploads,
		UploadRate:        up,
		TorrentUploadRate: cfg.TorrentUploadRate,
		Logger:            cfg.Logger,
		Metrics:           a.metrics.session,
		Version:           cfg.Version,

		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		UploadStallTimeout: cfg.UploadStallTimeout,
	}
	a.scfg.PayloadCheckInterval = cfg.PayloadPoll
	a.sched = newScheduler(cfg.AnnounceRate, cfg.AnnounceWorkers, a.announced)
	return a, nil
}

// Addr is the peer listener's address.
func (a *Agent) Addr() net.Addr { return a.l.Addr() }

// Close releases the listener and the lock of an Agent whose Run was never called.
func (a *Agent) Close() error {
	err := a.l.Close()
	unlock(a.lock)
	return err
}

func (a *Agent) statePath() string { return filepath.Join(a.cfg.StateDir, "agent.json") }

func (a *Agent) resumePath(ih bittorrent.InfoHash) string {
	return filepath.Join(a.cfg.StateDir, infoHex(ih)+".resume")
}

// Run seeds until ctx is done, then announces "stopped" for every torrent (in parallel,
// bounded by Config.StopTimeout), stops every session (each saves its resume record marked
// clean), saves the agent's state and releases the lock. It returns nil after a normal stop.
func (a *Agent) Run(ctx context.Context) error {
	defer unlock(a.lock)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	a.ctx = runCtx
	if !a.cfg.NoWatch {
		// Running sessions learn of payload changes from it (job.Config.Watcher).
		pw, err := job.NewWatcher(a.log)
		if err != nil {
			a.log.Warn("no file notifications for payloads; sessions poll them", "err", err)
		} else {
			a.pw = pw
			defer pw.Close() // Run returns once every session has stopped
		}
	}

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		scfg := a.cfg.Serve
		scfg.MaxConns, scfg.Metrics = a.cfg.MaxConns, a.metrics.session
		serveErr <- session.Serve(runCtx, a.l, a.wcfg, a.lookup, scfg)
	})
	for range a.cfg.CheckWorkers {
		wg.Go(func() { a.checkWorker(runCtx) })
	}
	wg.Go(func() { a.sched.run(runCtx, a.stopAnnouncer) })
	wg.Go(func() { a.scrapeLoop(runCtx) })

	// Watch before the first scan: a file created while the scan runs is then reported by
	// an event (handled after the scan) instead of waiting for the next periodic rescan.
	var events <-chan string
	if !a.cfg.NoWatch {
		w, err := newWatcher(a.cfg.Dir, a.log)
		if err != nil {
			a.log.Warn("no file notifications; relying on the periodic rescan", "dir", a.cfg.Dir, "err", err)
		} else {
			events = w.events
			wg.Go(func() { w.run(runCtx) })
		}
	}
	a.restoreAdded()
	a.scan()
	a.mu.Lock()
	a.scanned = true
	a.settledLocked()
	a.mu.Unlock()
	err := a.loop(ctx, events, serveErr)

	a.mu.Lock()
	a.closing = true
	var runs []*run
	for _, t := range a.byHash {
		if t.run != nil {
			runs = append(runs, t.run)
		}
	}
	a.mu.Unlock()
	cancel()
	wg.Wait()
	// Sessions save their records while the stopped announces go out.
	for _, r := range runs {
		r.cancel()
	}
	a.stopAll(a.sched.drain())
	a.sessions.Wait()
	a.savePersistent()
	return err
}

// loop handles rescans, file events and timers until ctx is done.
func (a *Agent) loop(ctx context.Context, events <-chan string, serveErr <-chan error) error {
	rescan := time.NewTicker(a.cfg.RescanInterval)
	defer rescan.Stop()
	tickEvery := min(a.cfg.RetryInterval, a.cfg.IdleTimeout, 5*time.Second) / 2
	tick := time.NewTicker(max(tickEvery, 20*time.Millisecond))
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	dirty := make(map[string]bool)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("peer listener: %w", err)
		case <-a.rescan:
			a.scan()
		case <-rescan.C:
			a.scan()
			a.checkStorage()
		case p := <-events:
			dirty[p] = true
			settle.Reset(settleDelay)
		case <-settle.C:
			for p := range dirty {
				a.scanPath(p)
			}
			a.payloadEvents(dirty)
			clear(dirty)
		case <-tick.C:
			a.housekeep()
		}
	}
}

// Rescan walks the directory again (as SIGHUP).
func (a *Agent) Rescan() {
	select {
	case a.rescan <- struct{}{}:
	default:
	}
}

// known reports whether a peer may connect for ih: only torrents seeding are served.
func (a *Agent) known(ih bittorrent.InfoHash) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.byHash[ih]
	return t != nil && t.state == Seeding
}

// infoHashes lists the torrents for incoming MSE, from a copy rebuilt only after a change.
func (a *Agent) infoHashes(yield func(bittorrent.InfoHash) bool) {
	a.mu.Lock()
	if a.hashList == nil {
		a.hashList = make([]bittorrent.InfoHash, 0, len(a.byHash))
		for ih, t := range a.byHash {
			if t.state == Seeding {
				a.hashList = append(a.hashList, ih)
			}
		}
	}
	list := a.hashList
	a.mu.Unlock()
	for _, ih := range list {
		if !yield(ih) {
			return
		}
	}
}

// lookup gives Serve the session of ih, starting it if idle.
func (a *Agent) lookup(ih bittorrent.InfoHash) *session.Torrent {
	a.mu.Lock()
	t := a.byHash[ih]
	a.mu.Unlock()
	if t == nil {
		return nil
	}
	return a.session(t)
}

// session returns t's running session, starting one when t is idle; nil when t is not
// seeding or its session could not start within sessionWait.
func (a *Agent) session(t *torrent) *session.Torrent {
	a.mu.Lock()
	if t.state != Seeding || a.closing || a.ctx == nil {
		a.mu.Unlock()
		return nil
	}
	r := t.run
	if r == nil {
		ctx, cancel := context.WithCancel(a.ctx)
		r = &run{cancel: cancel, started: make(chan struct{}), done: make(chan struct{})}
		t.run = r
		a.sessions.Add(1)
		go a.runSession(ctx, t, r)
	}
	r.lastUse.Store(time.Now().UnixNano())
	a.mu.Unlock()
	timer := time.NewTimer(sessionWait)
	defer timer.Stop()
	select {
	case <-r.started:
	case <-r.done:
		return nil
	case <-timer.C:
		return nil
	}
	select {
	case <-r.job.Ready():
		return r.job.Session()
	case <-r.done:
	case <-timer.C:
	}
	return nil
}

// runSession runs t's job until its context ends (idle, removed, paused, shutdown) or it
// fails (the payload changed under it: state error).
func (a *Agent) runSession(ctx context.Context, t *torrent, r *run) {
	defer a.sessions.Done()
	defer close(r.done)
	j, err := a.newJob(t, nil, false)
	if err == nil {
		r.job = j
		close(r.started)
		err = j.Run(ctx)
	}
	a.mu.Lock()
	t.run = nil
	if j != nil {
		st := j.Stats()
		t.baseUp, t.baseDown = max(t.baseUp, st.Uploaded), max(t.baseDown, st.Downloaded)
		if err == nil && st.PayloadChanged && t.state == Seeding && !a.closing {
			// Idle or stopped with pieces lost to a payload change: it is not seeding a
			// whole payload any more. The check hashes what the record does not vouch for.
			a.log.Warn("session ended with pieces lost to a payload change: checking again", "torrent", t.name)
			a.queueCheckLocked(t)
		}
	}
	if err != nil && ctx.Err() == nil {
		a.log.Error("torrent session failed", "torrent", t.name, "err", err)
		a.failLocked(t, err)
	}
	a.mu.Unlock()
	r.cancel()
}

// newJob makes the job of t; mi is the parsed torrent, or nil to parse t.path again.
func (a *Agent) newJob(t *torrent, mi *metafile.Torrent, full bool) (*job.Job, error) {
	if mi == nil {
		var err error
		if mi, err = a.loadTorrent(t); err != nil {
			return nil, err
		}
	}
	mode := resume.Fast
	if full {
		mode = resume.Full
	}
	return job.New(job.Config{
		Torrent:      mi,
		DataDir:      t.dataDir,
		ResumePath:   a.resumePath(t.ih),
		Check:        mode,
		CheckWorkers: 1,
		Session:      a.scfg,
		NoAnnounce:   true,
		OnCheck: func(p resume.Progress) {
			t.checkDone.Store(p.Done)
			t.checkTotal.Store(p.Total)
		},
		OnSaveError: func(error) { a.metrics.stateSaveFailures.WithLabelValues("resume").Inc() },
		Logger:      a.log,
		Watcher:     a.pw,
	})
}

// addTorrent registers a parsed torrent and queues its check. The caller holds a.mu.
func (a *Agent) addTorrentLocked(mi *metafile.Torrent, path, dataDir string, api bool) *torrent {
	a.seq++
	t := &torrent{
		ih:      mi.InfoHash,
		name:    mi.Name,
		size:    mi.Layout.Total,
		path:    path,
		dataDir: dataDir,
		api:     api,
		seq:     a.seq,
		mi:      mi,
		heapIdx: -1,
		state:   Queued,
		paused:  a.persist.paused(mi.InfoHash),
	}
	if len(mi.Trackers) > 0 && len(mi.Trackers[0]) > 0 {
		t.scrapeURL = mi.Trackers[0][0]
	}
	a.byHash[t.ih] = t
	a.byPath[path] = t
	if t.paused {
		t.state = Paused
		t.mi = nil
		return t
	}
	a.queueCheckLocked(t)
	return t
}

// queueCheckLocked puts t in the check queue (state queued).
func (a *Agent) queueCheckLocked(t *torrent) {
	if t.inCheckQueue || t.removed {
		return
	}
	a.leaveSeedingLocked(t)
	t.state = Queued
	t.inCheckQueue = true
	a.checkQ = append(a.checkQ, t)
	select {
	case a.checkWake <- struct{}{}:
	default:
	}
}

// checkWorker checks queued torrents, one at a time, until ctx ends.
func (a *Agent) checkWorker(ctx context.Context) {
	for {
		a.mu.Lock()
		var t *torrent
		if len(a.checkQ) > 0 {
			t = a.checkQ[0]
			a.checkQ[0] = nil
			a.checkQ = a.checkQ[1:]
			if len(a.checkQ) == 0 {
				a.checkQ = nil
			}
			// Another worker may want the next one.
			if len(a.checkQ) > 0 {
				select {
				case a.checkWake <- struct{}{}:
				default:
				}
			}
		}
		if t != nil {
			a.checking++
		}
		a.mu.Unlock()
		if t == nil {
			select {
			case <-ctx.Done():
				return
			case <-a.checkWake:
			}
			continue
		}
		a.check(ctx, t)
		a.mu.Lock()
		a.checking--
		a.settledLocked()
		a.mu.Unlock()
	}
}

// settledLocked logs, once, when the torrents found at start are all checked: the start-up
// time an operator of thousands of torrents wants to see.
func (a *Agent) settledLocked() {
	if a.settled || !a.scanned || a.checking > 0 || len(a.checkQ) > 0 {
		return
	}
	a.settled = true
	a.log.Info("start-up checks done", "torrents", len(a.byHash), "seeding", a.seeding,
		"hashed", a.checksHashed.Load(), "elapsed", time.Since(a.started).Round(time.Millisecond))
}

// check verifies t's payload (trusting a clean resume record whose file stamps match) and
// moves t to seeding, queued (no max-active slot), paused (storage missing) or error.
func (a *Agent) check(ctx context.Context, t *torrent) {
	a.mu.Lock()
	t.inCheckQueue = false
	if t.removed || t.paused {
		a.mu.Unlock()
		return
	}
	t.state = Checking
	mi, full := t.mi, t.fullCheck
	t.mi, t.fullCheck = nil, false
	a.mu.Unlock()
	t.checkDone.Store(0)
	t.checkTotal.Store(0)

	var (
		have   wire.Bitfield
		hashed bool
		j      *job.Job
		ann    *announcer.Announcer
		err    error
	)
	if mi == nil {
		mi, err = a.loadTorrent(t)
	}
	if err == nil {
		j, err = a.newJob(t, mi, full)
	}
	if err == nil {
		have, hashed, err = j.Check(ctx)
	}
	if err == nil && have.Full() {
		ann, err = a.newAnnouncer(t, mi)
	}
	if ctx.Err() != nil {
		return
	}
	if hashed {
		a.checksHashed.Add(1)
		a.metrics.checks.WithLabelValues("hashed").Inc()
	} else if err == nil {
		a.checksTrusted.Add(1)
		a.metrics.checks.WithLabelValues("trusted").Inc()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.removed || t.paused {
		return
	}
	if j != nil {
		// The record may be older than what this run knows: a session stopped for this
		// check (Verify, a retry) saves its record while the check reads it. Totals only
		// grow, so the larger figure is the true one.
		st := j.Stats()
		t.baseUp, t.baseDown = max(t.baseUp, st.Uploaded), max(t.baseDown, st.Downloaded)
		if !t.startSet {
			// Announces count from what the torrent had uploaded when this agent took it,
			// fixed once: a later check must not move it (that made a stopped announce
			// after a Verify report uploaded=0).
			t.startUp, t.startDown, t.startSet = t.baseUp, t.baseDown, true
		}
	}
	switch {
	case err == nil && have.Full():
		t.err, t.failures, t.storageGone = "", 0, false
		t.ann0 = ann
		a.startSeedingLocked(t)
	case err == nil:
		a.failLocked(t, fmt.Errorf("payload fails verification: %d of %d pieces good", have.Count(), have.Len()))
	default:
		a.failLocked(t, err)
	}
}

// failLocked records why t cannot seed: storage missing (paused until the data directory
// is back, never re-checked meanwhile) or error (retried with back-off).
func (a *Agent) failLocked(t *torrent, err error) {
	a.leaveSeedingLocked(t)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(t.dataDir); serr != nil {
			if !t.storageGone {
				a.log.Warn("storage missing; torrent paused until it is back", "torrent", t.name, "dir", t.dataDir)
			}
			t.state, t.storageGone = Paused, true
			t.err = fmt.Sprintf("storage missing: %s", t.dataDir)
			return
		}
	}
	t.state, t.err = Error, err.Error()
	t.failures++
	wait := min(a.cfg.RetryInterval<<min(t.failures-1, 20), MaxRetryInterval)
	t.retryAt = time.Now().Add(wait)
	a.log.Error("torrent in error", "torrent", t.name, "err", err, "retry_in", wait)
}

// startSeedingLocked makes a checked torrent seed, or queues it for a max-active slot.
func (a *Agent) startSeedingLocked(t *torrent) {
	if a.cfg.MaxActive > 0 && a.seeding >= a.cfg.MaxActive {
		t.state = Queued
		return
	}
	ann := t.ann0
	t.ann0 = nil
	t.state, t.seeding = Seeding, true
	a.seeding++
	a.hashList = nil
	if ann != nil {
		// A little jitter on top of the scheduler's rate: torrents checked together do
		// not stay in lockstep.
		a.sched.add(t, ann, time.Now().Add(time.Duration(t.seq%97)*time.Millisecond))
	}
}

// leaveSeedingLocked ends t's seeding: its slot goes to the next queued torrent, its
// session stops and "stopped" is announced.
func (a *Agent) leaveSeedingLocked(t *torrent) {
	if !t.seeding {
		return
	}
	t.seeding = false
	a.seeding--
	a.hashList = nil
	if t.run != nil {
		t.run.cancel()
	}
	if ann := a.sched.remove(t); ann != nil {
		a.stopAnnouncer(ann)
	}
	if a.closing {
		return
	}
	// Promote the longest-waiting checked torrent.
	var next *torrent
	for _, q := range a.byHash {
		if q.state == Queued && !q.inCheckQueue && !q.removed && q != t && (next == nil || q.seq < next.seq) {
			next = q
		}
	}
	if next != nil {
		a.startSeedingLocked(next)
	}
}

// stopAnnouncer sends "stopped" for an announcer taken off the schedule, in the background.
func (a *Agent) stopAnnouncer(ann *announcer.Announcer) {
	a.sessions.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		defer cancel()
		ann.Stop(ctx)
	})
}

// stopAll announces "stopped" for every announcer at once, with at most DefaultStopWorkers
// in flight, within StopTimeout.
func (a *Agent) stopAll(anns []*announcer.Announcer) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
	defer cancel()
	work := make(chan *announcer.Announcer)
	var wg sync.WaitGroup
	for range min(DefaultStopWorkers, len(anns)) {
		wg.Go(func() {
			for ann := range work {
				ann.Stop(ctx)
			}
		})
	}
	for _, ann := range anns {
		work <- ann
	}
	close(work)
	wg.Wait()
}

// loadTorrent parses t's .torrent again (the agent keeps no parsed torrent while idle).
func (a *Agent) loadTorrent(t *torrent) (*metafile.Torrent, error) {
	mi, _, err := a.readTorrent(t.path)
	if err != nil {
		return nil, err
	}
	if mi.InfoHash != t.ih {
		return nil, fmt.Errorf("%s changed: info-hash %x, was %x", t.path, mi.InfoHash, t.ih)
	}
	return mi, nil
}

// newAnnouncer makes t's tracker client, nil for a torrent without trackers.
func (a *Agent) newAnnouncer(t *torrent, mi *metafile.Torrent) (*announcer.Announcer, error) {
	if len(mi.Trackers) == 0 {
		return nil, nil
	}
	cfg := a.cfg.Announce
	cfg.Tiers = mi.Trackers
	cfg.InfoHash = t.ih
	cfg.PeerID = a.cfg.PeerID
	cfg.Port = a.port
	cfg.Logger = cmp.Or(cfg.Logger, a.log)
	cfg.Progress = func() announcer.Progress {
		up, down, _, _ := a.figures(t)
		a.mu.Lock()
		startUp, startDown := t.startUp, t.startDown
		a.mu.Unlock()
		return announcer.Progress{Uploaded: up - startUp, Downloaded: down - startDown, Left: a.sessionLeft(t)}
	}
	ann, err := announcer.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tracker of %s: %w", t.name, err)
	}
	return ann, nil
}

// announced is the scheduler's report of one announce: counted, and peers are dialled when
// the tracker says someone is downloading.
func (a *Agent) announced(t *torrent, _, after announcer.Status, peers []netip.AddrPort) {
	a.metrics.announce(after)
	if len(peers) == 0 || after.Leechers == 0 {
		return
	}
	if s := a.session(t); s != nil {
		s.AddPeers(peers)
	}
}

// figures returns t's transfer totals (all runs) and current peers and upload rate.
func (a *Agent) figures(t *torrent) (up, down int64, peers int, rate int64) {
	a.mu.Lock()
	up, down = t.baseUp, t.baseDown
	r := t.run
	a.mu.Unlock()
	if r == nil {
		return up, down, 0, 0
	}
	select {
	case <-r.started:
	default:
		return up, down, 0, 0
	}
	st := r.job.Stats()
	if st.Session.NumPieces == 0 {
		return up, down, 0, 0
	}
	// The job counts from its record, which may predate what a.mu knows (see check).
	return max(st.Uploaded, up), max(st.Downloaded, down), st.Session.Peers, st.Session.UploadRate
}

// housekeep retries torrents in error, looks for storage that came back and stops idle
// sessions.
func (a *Agent) housekeep() {
	now := time.Now()
	a.mu.Lock()
	var idle []*run
	var gone []*torrent
	for _, t := range a.byHash {
		switch {
		case t.state == Error && !t.inCheckQueue && now.After(t.retryAt):
			a.queueCheckLocked(t)
		case t.storageGone && !t.paused && !t.inCheckQueue:
			gone = append(gone, t)
		case t.run != nil:
			idle = append(idle, t.run)
		}
	}
	a.mu.Unlock()
	for _, t := range gone {
		if _, err := os.Stat(t.dataDir); err == nil {
			a.mu.Lock()
			if t.storageGone && !t.removed {
				a.log.Info("storage back; checking", "torrent", t.name, "dir", t.dataDir)
				t.storageGone = false
				a.queueCheckLocked(t)
			}
			a.mu.Unlock()
		}
	}
	for _, r := range idle {
		select {
		case <-r.started:
		default:
			continue
		}
		if st := r.job.Stats(); st.Session.Peers > 0 {
			r.lastUse.Store(now.UnixNano())
		} else if now.Sub(time.Unix(0, r.lastUse.Load())) > a.cfg.IdleTimeout {
			r.cancel()
		}
	}
}

// checkStorage pauses seeding torrents whose data directory disappeared (an unmounted
// disk): one stat per torrent per rescan, no hashing.
func (a *Agent) checkStorage() {
	a.mu.Lock()
	var ts []*torrent
	for _, t := range a.byHash {
		if t.state == Seeding || t.state == Queued && !t.inCheckQueue {
			ts = append(ts, t)
		}
	}
	a.mu.Unlock()
	for _, t := range ts {
		if _, err := os.Stat(t.dataDir); errors.Is(err, fs.ErrNotExist) {
			a.mu.Lock()
			if !t.removed && (t.state == Seeding || t.state == Queued) {
				a.failLocked(t, fmt.Errorf("data directory: %w", err))
			}
			a.mu.Unlock()
		}
	}
}

// removeLocked forgets t: its seeding ends ("stopped" announced) and its session stops.
func (a *Agent) removeLocked(t *torrent) {
	a.leaveSeedingLocked(t)
	t.removed = true
	t.mi = nil
	delete(a.byHash, t.ih)
	if a.byPath[t.path] == t {
		delete(a.byPath, t.path)
	}
	if t.inCheckQueue {
		a.checkQ = slices.DeleteFunc(a.checkQ, func(q *torrent) bool { return q == t })
		t.inCheckQueue = false
	}
	a.hashList = nil
}

// dataDirFor is where the payload of the torrent at path is.
func (a *Agent) dataDirFor(path string) string {
	if a.cfg.Data != "" {
		return a.cfg.Data
	}
	return filepath.Dir(path)
}
