// Package allowlist is bttrack's --allowed_dir: the tracker serves only torrents whose .torrent
// files lie in a directory tree. A List scans the tree, keeps each torrent's name and total size
// by info-hash (for the stats page and scrape's "name"), and rescans on an interval and on
// demand (SIGHUP). Reads are lock-free: a scan builds a new immutable map and publishes it
// with one atomic pointer store.
//
// Info-hashes are BEP 3's SHA-1 of the info dictionary; for BitTorrent v2 torrents (BEP 52) the
// SHA-256 truncated to 20 bytes is accepted too, as v2 clients announce it on the v1 wire. A
// hybrid torrent is therefore reachable under both hashes; a v2-only torrent under the
// truncated one alone.
package allowlist

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// MaxTorrentFileSize bounds the .torrent files read; bigger ones are skipped as bad (a
// metainfo file of a multi-terabyte torrent is a few MiB).
const MaxTorrentFileSize = 64 << 20

// Config configures a List.
type Config struct {
	// Dir is the directory tree to scan (bttrack's --allowed_dir). Required.
	Dir string
	// Interval is the time between rescans (bttrack's --parse_allowed_interval, in minutes
	// there). Default 15 min; negative: no periodic rescans (Rescan still works).
	Interval time.Duration
	// Logger receives skipped files and scan errors (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives webswarm_tracker_allowed_torrents and
	// webswarm_tracker_allowed_bad_files (nil: not registered).
	Registerer prometheus.Registerer
}

// entry is what the list knows of one allowed torrent.
type entry struct {
	Name string
	// Size is the total length of the torrent's files in bytes.
	Size int64
	// Path is the .torrent file it came from.
	Path string
}

// ScanStats describe the last completed scan.
type ScanStats struct {
	// Files is the number of .torrent files found, Bad those that could not be parsed.
	Files int
	Bad   int
	// Torrents is the number of info-hashes allowed (a hybrid torrent counts twice).
	Torrents int
	// Parsed is how many files were (re)parsed; the others were unchanged since the last scan.
	Parsed   int
	Duration time.Duration
}

// List is the allowed set. It implements announce.AllowList.
type List struct {
	cfg   Config
	table atomic.Pointer[map[bittorrent.InfoHash]*entry]

	mu    sync.Mutex // serialises scans; guards cache and stats
	cache map[string]cachedFile
	stats ScanStats

	torrents prometheus.Gauge
	badFiles prometheus.Gauge

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// cachedFile is one .torrent file's parse, reused while its size and mtime are unchanged.
type cachedFile struct {
	size    int64
	mtime   time.Time
	hashes  []bittorrent.InfoHash
	torrent *entry
	bad     bool
}

// New scans cfg.Dir once and starts rescanning every cfg.Interval; Close stops that. It fails
// when the directory cannot be read; files that do not parse are logged and skipped.
func New(cfg Config) (*List, error) {
	if cfg.Dir == "" {
		return nil, errors.New("allowlist: no directory")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &List{
		cfg:   cfg,
		cache: map[string]cachedFile{},
		torrents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_tracker_allowed_torrents",
			Help: "Info-hashes the allowed_dir list serves (a hybrid v1+v2 torrent counts twice).",
		}),
		badFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webswarm_tracker_allowed_bad_files",
			Help: ".torrent files in allowed_dir that could not be parsed at the last scan.",
		}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	empty := map[bittorrent.InfoHash]*entry{}
	l.table.Store(&empty)
	if err := l.Rescan(); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.torrents, l.badFiles} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("allowlist: register metrics: %w", err)
			}
		}
	}
	if cfg.Interval > 0 {
		go l.run()
	} else {
		close(l.done)
	}
	return l, nil
}

func (l *List) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			if err := l.Rescan(); err != nil {
				l.cfg.Logger.Error("allowed_dir rescan failed; keeping the previous list", "dir", l.cfg.Dir, "err", err)
			}
		}
	}
}

// Close stops periodic rescans. The list keeps answering.
func (l *List) Close() error {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

// Allowed reports whether the torrent's .torrent file is in the directory. It implements
// announce.AllowList and takes no lock.
func (l *List) Allowed(ih bittorrent.InfoHash) bool {
	_, ok := (*l.table.Load())[ih]
	return ok
}

// Info returns an allowed torrent's name and total size in bytes.
func (l *List) Info(ih bittorrent.InfoHash) (name string, size int64, ok bool) {
	t, ok := (*l.table.Load())[ih]
	if !ok {
		return "", 0, false
	}
	return t.Name, t.Size, true
}

// Len returns the number of allowed info-hashes.
func (l *List) Len() int { return len(*l.table.Load()) }

// Range calls fn for every allowed info-hash, in no particular order, until fn returns false.
func (l *List) Range(fn func(ih bittorrent.InfoHash, name string, size int64) bool) {
	for ih, t := range *l.table.Load() {
		if !fn(ih, t.Name, t.Size) {
			return
		}
	}
}

// Stats returns the figures of the last completed scan.
func (l *List) Stats() ScanStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Rescan reads the directory tree again and swaps in the new list. Files unchanged since the
// last scan (same size and modification time) are not parsed again. When the directory itself
// cannot be read, the previous list stays in force and the error is returned; unreadable
// subdirectories and bad files are logged and skipped.
func (l *List) Rescan() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := time.Now()
	if st, err := os.Stat(l.cfg.Dir); err != nil {
		return fmt.Errorf("allowed_dir: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("allowed_dir %s is not a directory", l.cfg.Dir)
	}
	var stats ScanStats
	cache := make(map[string]cachedFile, len(l.cache))
	table := make(map[bittorrent.InfoHash]*entry, len(*l.table.Load()))
	err := filepath.WalkDir(l.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == l.cfg.Dir {
				return err
			}
			l.cfg.Logger.Warn("allowed_dir: skipping unreadable entry", "path", path, "err", err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(path), ".torrent") {
			return nil
		}
		// Regular files and symlinks to them (symlinked directories are not followed: no loops).
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			return nil
		}
		stats.Files++
		cf, ok := l.cache[path]
		if !ok || cf.size != st.Size() || !cf.mtime.Equal(st.ModTime()) {
			stats.Parsed++
			cf = cachedFile{size: st.Size(), mtime: st.ModTime()}
			t, hashes, err := parseFile(path, st.Size())
			if err != nil {
				cf.bad = true
				l.cfg.Logger.Warn("allowed_dir: skipping a .torrent file that does not parse", "path", path, "err", err)
			} else {
				cf.torrent, cf.hashes = t, hashes
			}
		}
		cache[path] = cf
		if cf.bad {
			stats.Bad++
			return nil
		}
		for _, ih := range cf.hashes {
			if prev, dup := table[ih]; dup {
				l.cfg.Logger.Debug("allowed_dir: torrent listed twice", "info_hash", ih, "kept", prev.Path, "also", path)
				continue
			}
			table[ih] = cf.torrent
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan allowed_dir %s: %w", l.cfg.Dir, err)
	}
	l.table.Store(&table)
	l.cache = cache
	stats.Torrents = len(table)
	stats.Duration = time.Since(start)
	l.stats = stats
	l.torrents.Set(float64(stats.Torrents))
	l.badFiles.Set(float64(stats.Bad))
	return nil
}

// parseFile reads one .torrent file and returns its torrent and the info-hashes it answers to.
func parseFile(path string, size int64) (*entry, []bittorrent.InfoHash, error) {
	if size > MaxTorrentFileSize {
		return nil, nil, fmt.Errorf("%d bytes, more than %d", size, MaxTorrentFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	t, hashes, err := safeParse(io.LimitReader(f, MaxTorrentFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	t.Path = path
	if t.Name == "" { // bttrack's fallback: the file's name
		t.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return t, hashes, nil
}

// safeParse is parse with a panic in the metainfo library turned into an error: a hostile
// file dropped into allowed_dir must not take the tracker down.
func safeParse(r io.Reader) (t *entry, hashes []bittorrent.InfoHash, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, hashes, err = nil, nil, fmt.Errorf("metainfo parser panicked: %v", p)
		}
	}()
	return parse(r)
}

// parse decodes a metainfo file: name, total size and info-hashes (v1 SHA-1 when the info
// dictionary has v1 fields, truncated v2 SHA-256 when it says meta version 2).
func parse(r io.Reader) (*entry, []bittorrent.InfoHash, error) {
	mi, err := metainfo.Load(r)
	if err != nil {
		return nil, nil, fmt.Errorf("decode metainfo: %w", err)
	}
	if len(mi.InfoBytes) == 0 {
		return nil, nil, errors.New("no info dictionary")
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, nil, fmt.Errorf("decode info dictionary: %w", err)
	}
	var hashes []bittorrent.InfoHash
	if info.HasV1() {
		hashes = append(hashes, bittorrent.InfoHash(mi.HashInfoBytes()))
	}
	if info.HasV2() {
		sum := sha256.Sum256(mi.InfoBytes)
		hashes = append(hashes, bittorrent.InfoHash(sum[:20]))
	}
	if len(hashes) == 0 {
		return nil, nil, fmt.Errorf("meta version %d has no usable info-hash", info.MetaVersion)
	}
	if info.PieceLength <= 0 {
		return nil, nil, errors.New("no piece length")
	}
	var size int64
	for fi := range info.UpvertedFilesIter() {
		if fi.Length < 0 {
			return nil, nil, errors.New("negative file length")
		}
		if size += fi.Length; size < 0 {
			return nil, nil, errors.New("total length overflows")
		}
	}
	return &entry{Name: info.BestName(), Size: size}, hashes, nil
}
