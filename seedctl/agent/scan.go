package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
)

// seenFile is what the last look at a .torrent in Dir found.
type seenFile struct {
	size    int64
	modTime time.Time
	// bad: refused (not a torrent, not a regular file, over a limit). It is read again only
	// when its size or time changes: a hostile file must not cost a parse at every rescan.
	bad bool
	// retry: it could not be read at all (permissions, I/O): no stamp to wait on, so it is
	// tried again at every look.
	retry bool
}

// isTorrent reports whether name is a .torrent file's.
func isTorrent(name string) bool {
	return strings.EqualFold(filepath.Ext(name), ".torrent") && !strings.HasPrefix(filepath.Base(name), ".")
}

// scan walks Dir: new and changed .torrent files are taken (parsed in parallel: with
// thousands of torrents the parsing is most of the start-up), those gone are removed.
func (a *Agent) scan() {
	found := make(map[string]bool)
	type file struct {
		path string
		d    fs.DirEntry
	}
	files := make(chan file)
	var wg sync.WaitGroup
	for range a.cfg.CheckWorkers {
		wg.Go(func() {
			for f := range files {
				info := f.d.Info
				if f.d.Type()&fs.ModeSymlink != 0 {
					// The stamp to compare is the target's, as the read's fstat gives.
					info = func() (fs.FileInfo, error) { return os.Stat(f.path) }
				}
				a.scanFile(f.path, info)
			}
		})
	}
	err := filepath.WalkDir(a.cfg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == a.cfg.Dir {
				return err
			}
			a.log.Warn("scan", "path", p, "err", err)
			return nil
		}
		if d.IsDir() || !isTorrent(p) {
			return nil
		}
		found[p] = true
		files <- file{p, d}
		return nil
	})
	close(files)
	wg.Wait()
	if err != nil {
		// An unreadable Dir (an unmounted disk) removes nothing: the torrents come back
		// with it, and meanwhile their storage check pauses them.
		a.log.Error("scan of the torrent directory failed", "dir", a.cfg.Dir, "err", err)
		return
	}
	a.mu.Lock()
	var gone []string
	for p := range a.seen {
		if !found[p] {
			gone = append(gone, p)
		}
	}
	a.mu.Unlock()
	for _, p := range gone {
		a.forgetPath(p)
	}
}

// scanPath looks at one path a file event named: a .torrent, or a directory whose
// .torrent files are all looked at.
func (a *Agent) scanPath(p string) {
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.mu.Lock()
		var gone []string
		for q := range a.seen {
			if q == p || strings.HasPrefix(q, p+string(filepath.Separator)) {
				gone = append(gone, q)
			}
		}
		a.mu.Unlock()
		for _, q := range gone {
			a.forgetPath(q)
		}
	case err != nil:
		a.log.Warn("watch", "path", p, "err", err)
	case st.IsDir():
		a.Rescan()
	case isTorrent(p):
		a.scanFile(p, func() (fs.FileInfo, error) { return st, nil })
	}
}

// scanFile takes the .torrent at p when it is new or changed since last seen. One that is
// refused (still being written, or hostile) is remembered as bad with the stamp it was read
// with, and read again only when it changes; it is never taken half-read.
func (a *Agent) scanFile(p string, info func() (fs.FileInfo, error)) {
	a.mu.Lock()
	prev, ok := a.seen[p]
	a.mu.Unlock()
	if ok && !prev.retry {
		// Only a file seen before needs a stat of its own: a new one is read at once, and
		// the read's fstat gives its stamp.
		fi, err := info()
		if err != nil || prev.size == fi.Size() && prev.modTime.Equal(fi.ModTime()) {
			if prev.bad && err == nil {
				a.metrics.torrentFilesSkipped.Inc()
			}
			return
		}
	}
	mi, stamp, err := a.readTorrent(p)
	if errors.Is(err, fs.ErrNotExist) {
		return // gone meanwhile: the next scan or event forgets it
	}
	// Only a file that could not be read has no stamp to wait on (see storage.ReadFile).
	seen := seenFile{size: stamp.Size, modTime: time.Unix(0, stamp.ModTime), bad: err != nil, retry: err != nil && refusedReason(err) == RefusedUnreadable}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[p] = seen
	if err != nil {
		a.metrics.refused(err)
		if !ok || !prev.bad {
			a.log.Warn("not a torrent (yet): will look again when it changes", "path", p, "err", err)
		}
		return
	}
	old := a.byPath[p]
	if old != nil && old.ih == mi.InfoHash {
		return
	}
	if old != nil {
		a.log.Info("torrent replaced", "path", p, "old", old.ih.String(), "new", bittorrent.InfoHash(mi.InfoHash).String())
		a.removeLocked(old)
	}
	if other := a.byHash[mi.InfoHash]; other != nil {
		a.log.Warn("same torrent twice: keeping the first", "path", p, "first", other.path)
		return
	}
	if a.persist.isRemoved(mi.InfoHash) {
		return
	}
	a.addTorrentLocked(mi, p, a.dataDirFor(p), false)
}

// readTorrent reads and parses the .torrent at p and returns the file's stamp as read (also
// with a refusal, when the file could be opened: see storage.ReadFile).
func (a *Agent) readTorrent(p string) (*metafile.Torrent, storage.FileStamp, error) {
	data, stamp, err := storage.ReadFile(p, a.cfg.TorrentLimits.MaxSize)
	if errors.Is(err, storage.ErrTooLarge) {
		err = fmt.Errorf("%w: %w", metafile.ErrLimit, err)
	}
	if err != nil {
		return nil, stamp, err
	}
	mi, err := a.cfg.TorrentLimits.Parse(data)
	if err != nil {
		return nil, stamp, fmt.Errorf("%s: %w", p, err)
	}
	return mi, stamp, nil
}

// badFiles counts the .torrent files in Dir refused at their last read.
func (a *Agent) badFiles() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.seen {
		if s.bad {
			n++
		}
	}
	return float64(n)
}

// forgetPath removes the torrent whose .torrent file at p is gone.
func (a *Agent) forgetPath(p string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, p)
	if t := a.byPath[p]; t != nil && !t.api {
		a.log.Info("torrent file gone: stopped seeding", "path", p)
		a.removeLocked(t)
	}
}

// watcher reports paths under a directory tree that changed (fsnotify watches one
// directory each, so every subdirectory is added as it is found).
type watcher struct {
	w      *fsnotify.Watcher
	log    *slog.Logger
	events chan string
}

func newWatcher(dir string, log *slog.Logger) (*watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	wa := &watcher{w: w, log: log, events: make(chan string, 256)}
	if err := wa.addTree(dir); err != nil {
		w.Close()
		return nil, err
	}
	return wa, nil
}

// addTree watches dir and every directory under it.
func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if d.IsDir() {
			if err := w.w.Add(p); err != nil {
				w.log.Warn("cannot watch directory", "dir", p, "err", err)
			}
		}
		return nil
	})
}

// reportTree sends every file under dir as an event; false when ctx ended.
func (w *watcher) reportTree(ctx context.Context, dir string) bool {
	ok := true
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		select {
		case w.events <- p:
			return nil
		case <-ctx.Done():
			ok = false
			return filepath.SkipAll
		}
	})
	return ok
}

// run forwards events until ctx ends, then closes the watcher. Its receive loop is
// job.Watcher's too (the fsnotify idiom); what each does with an event differs (this one
// watches .torrent files in a tree, that one payload files by torrent), so they stay apart.
func (w *watcher) run(ctx context.Context) {
	defer w.w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					// Files may have landed in the new directory before it was watched
					// (mkdir -p + cp, tar x): report what is already there.
					w.addTree(ev.Name)
					if !w.reportTree(ctx, ev.Name) {
						return
					}
				}
			}
			select {
			case w.events <- ev.Name:
			case <-ctx.Done():
				return
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: the periodic rescan finds what they said.
			w.log.Warn("file notifications", "err", err)
		}
	}
}
