package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

var _ Controller = (*Agent)(nil)

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

func (a *Agent) resumePath(ih bittorrent.InfoHash) string { return resume.PathFor(a.cfg.StateDir, ih) }

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
