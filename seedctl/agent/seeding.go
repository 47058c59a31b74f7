package agent

import (
	"context"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/session"
)

// sessionWait bounds how long an incoming connection (or a batch of tracker peers) waits for
// a torrent's session to start: a check that trusts a clean record takes milliseconds.
const sessionWait = 10 * time.Second

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
	r := a.startRunLocked(t)
	a.mu.Unlock()
	if r == nil {
		return nil
	}
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

// startRunLocked starts t's session unless it runs already, and marks it used; nil when t
// is not seeding or the agent is not running. The caller holds a.mu.
func (a *Agent) startRunLocked(t *torrent) *run {
	if t.state != Seeding || a.closing || a.ctx == nil {
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
	return r
}

// alwaysOn reports whether t's session runs for as long as t seeds, peers or not: a
// torrent for browsers announces to its WebSocket trackers from its session, so an idle
// one would never hear of a browser. The caller holds a.mu.
func (a *Agent) alwaysOn(t *torrent) bool {
	return t.browser && a.cfg.WebRTC != nil
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
	var webrtc *rtc.Transport
	if t.browser {
		webrtc = a.cfg.WebRTC
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
		WebRTC:      webrtc,
		WebRTCPeers: a.cfg.WebRTCTorrentPeers,
	})
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
	if a.alwaysOn(t) {
		a.startRunLocked(t)
	}
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

// webrtcPeers is how many of t's current peers are WebRTC data channels.
func (a *Agent) webrtcPeers(t *torrent) int {
	a.mu.Lock()
	r := t.run
	a.mu.Unlock()
	if r == nil {
		return 0
	}
	select {
	case <-r.started:
		return r.job.Stats().Session.WebRTCPeers
	default:
		return 0
	}
}
