package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// housekeep retries torrents in error, looks for storage that came back and stops idle
// sessions (but those of torrents for browsers, which run while they seed).
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
		case a.alwaysOn(t):
			// Not stopped when idle; started again if its session ended while it seeds.
			a.startRunLocked(t)
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
