package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/wire"
)

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
