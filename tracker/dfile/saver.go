package dfile

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/atomicfile"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// SaverConfig configures a Saver.
type SaverConfig struct {
	// Path is the state file (bttrack's --dfile). Required.
	Path string
	// Store is the state to save and restore. Required.
	Store swarm.Store
	// Interval is the time between saves (save_dfile_interval). Default 5 min.
	Interval time.Duration
	// Registerer receives the save/load metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger receives save failures (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Saver loads the state file once and saves it on an interval and at Close. Use:
//
//	s, err := dfile.NewSaver(cfg)  // registers metrics
//	stats, err := s.Load()         // log a non-nil error loudly; the tracker can go on
//	s.Start()                      // periodic saves
//	defer s.Close()                // stops them and saves a last time
type Saver struct {
	cfg SaverConfig

	saveDuration prometheus.Histogram
	lastSave     prometheus.Gauge
	saveFailures prometheus.Counter
	loadFailures prometheus.Counter
	staleTemps   prometheus.Counter

	mu      sync.Mutex // serialises saves
	refused error      // set when a corrupt file could not be moved aside: never overwrite it
	closed  bool

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// NewSaver checks cfg, checks that the state file's directory exists and is writable (an
// error otherwise: the state would be lost at the first save), removes temporary files that
// saves interrupted by a crash left there, and registers the metrics
// webswarm_tracker_state_save_duration_seconds, webswarm_tracker_state_last_save_timestamp_seconds,
// webswarm_tracker_state_save_failures_total, webswarm_tracker_state_load_failures_total and
// webswarm_tracker_state_stale_temp_files_removed_total. It starts nothing: call Load, then
// Start.
func NewSaver(cfg SaverConfig) (*Saver, error) {
	if cfg.Path == "" {
		return nil, errors.New("dfile: no state file path")
	}
	if cfg.Store == nil {
		return nil, errors.New("dfile: no store")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("dfile: negative save interval %v", cfg.Interval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Saver{
		cfg: cfg,
		saveDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "webswarm_tracker_state_save_duration_seconds",
			Help:    "Time to write the state file (read the store, encode, write, fsync, rename).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		lastSave: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_tracker_state_last_save_timestamp_seconds",
			Help: "Unix time of the last successful state file save (0: none yet).",
		}),
		saveFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_state_save_failures_total",
			Help: "State file saves that failed (the previous file is kept).",
		}),
		loadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_state_load_failures_total",
			Help: "State files found unreadable or corrupt at load and moved aside.",
		}),
		staleTemps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webswarm_tracker_state_stale_temp_files_removed_total",
			Help: "Temporary files of unfinished saves (a crash mid-save) removed at start.",
		}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := checkDir(cfg.Path); err != nil {
		return nil, err
	}
	n, err := atomicfile.RemoveStale(cfg.Path)
	s.staleTemps.Add(float64(n))
	if n > 0 {
		cfg.Logger.Warn("removed temporary files of unfinished state saves", "path", cfg.Path, "files", n)
	}
	if err != nil {
		cfg.Logger.Warn("could not remove every stale temporary state file", "path", cfg.Path, "err", err)
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.saveDuration, s.lastSave, s.saveFailures, s.loadFailures, s.staleTemps} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("dfile: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Load restores the state file into the store (see the package function Load) and counts a
// corrupt file in webswarm_tracker_state_load_failures_total. If a corrupt file could not be
// moved aside, later saves refuse to overwrite it.
func (s *Saver) Load() (Stats, error) {
	stats, err := load(s.cfg.Path, s.cfg.Store, s.cfg.Now())
	var ce *CorruptError
	if errors.As(err, &ce) {
		s.loadFailures.Inc()
		if ce.MovedTo == "" {
			s.mu.Lock()
			s.refused = fmt.Errorf("not overwriting %s: it could not be read nor moved aside", s.cfg.Path)
			s.mu.Unlock()
		}
	}
	return stats, err
}

// Start begins saving every Interval. It is a no-op after the first call or after Close.
func (s *Saver) Start() {
	s.startOnce.Do(func() { go s.run() })
}

// run saves every Interval until Close. (The ticker loop is the same as the Redis store's
// expiry loop: the Go idiom, no logic to share.)
func (s *Saver) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			if err := s.Save(); err != nil {
				s.cfg.Logger.Error("state file save failed; the previous file is kept", "path", s.cfg.Path, "err", err)
			}
		}
	}
}

// Save writes the state file now. Failures are counted and returned.
func (s *Saver) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked()
}

func (s *Saver) saveLocked() error {
	if s.refused != nil {
		s.saveFailures.Inc()
		return s.refused
	}
	start := time.Now()
	err := Save(s.cfg.Path, s.cfg.Store)
	s.saveDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.saveFailures.Inc()
		return err
	}
	s.lastSave.Set(float64(s.cfg.Now().UnixNano()) / 1e9)
	return nil
}

// Close stops periodic saves and saves a last time (the SIGTERM path); it returns that save's
// error. Later calls do nothing and return nil.
func (s *Saver) Close() error {
	started := true
	s.startOnce.Do(func() { started = false })
	if started {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.saveLocked()
}
