package job

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// Watcher tells running jobs that their payload files changed, from file notifications
// (inotify on Linux). One Watcher serves every job of a process: an inotify instance is a
// scarce resource (128 a user by default), a directory watch is not. It watches the
// directories holding payload files, and calls a job back for an event on one of its
// files; the job's session then stats its files (storage.Files.Changes). Notifications
// are an accelerator: the session's poll (session.Config.PayloadCheckInterval) finds
// what a lost event did not tell.
type Watcher struct {
	w    *fsnotify.Watcher
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}

	mu     sync.Mutex
	dirs   map[string]int                 // watched directories, with the number of files watched in each
	byPath map[string]map[*watch]struct{} // payload file -> its watches
}

// watch is one job's registration.
type watch struct{ notify func() }

// NewWatcher starts a Watcher; Close stops it.
func NewWatcher(log *slog.Logger) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{w: fw, log: log, stop: cancel, done: make(chan struct{}),
		dirs: map[string]int{}, byPath: map[string]map[*watch]struct{}{}}
	go w.run(ctx)
	return w, nil
}

// Close stops the Watcher and waits for its goroutine.
func (w *Watcher) Close() error {
	w.stop()
	<-w.done
	return w.w.Close()
}

// add calls notify (from the Watcher's goroutine; it must not block) after every event on
// one of paths, until the returned function is called.
func (w *Watcher) add(paths []string, notify func()) (remove func()) {
	wa := &watch{notify: notify}
	w.mu.Lock()
	defer w.mu.Unlock()
	var added []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		dir := filepath.Dir(p)
		if w.dirs[dir] == 0 {
			if err := w.w.Add(dir); err != nil {
				// Out of inotify watches (fs.inotify.max_user_watches), most likely: one
				// line, not one a directory; the session's poll covers the rest.
				w.log.Warn("cannot watch payload directory; its changes are found by polling", "dir", dir, "err", err)
				break
			}
		}
		w.dirs[dir]++
		if w.byPath[p] == nil {
			w.byPath[p] = map[*watch]struct{}{}
		}
		w.byPath[p][wa] = struct{}{}
		added = append(added, p)
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, p := range added {
			delete(w.byPath[p], wa)
			if len(w.byPath[p]) == 0 {
				delete(w.byPath, p)
			}
			dir := filepath.Dir(p)
			if w.dirs[dir]--; w.dirs[dir] == 0 {
				delete(w.dirs, dir)
				w.w.Remove(dir)
			}
		}
	}
}

// run hands each event to the torrents watching its path until ctx ends. (The agent's
// directory watcher reads fsnotify with the same loop; see agent/scan.go.)
func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			w.mu.Lock()
			for wa := range w.byPath[ev.Name] {
				wa.notify()
			}
			w.mu.Unlock()
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: the sessions' polls find what they said.
			w.log.Warn("payload file notifications", "err", err)
		}
	}
}
