// Package job runs one torrent from start to stop: it opens the payload, checks it against
// the resume record, runs the peer session and the tracker client side by side, keeps the
// resume record current, and on the way out announces "stopped" and marks the record clean.
//
// It is the glue that seedctl seed, seedctl get and (later) the agent share; the protocol
// work lives in seedctl/session (peers, BEP 3/6/9/10), seedctl/announcer (BEP 3/12/15/23) and
// seedctl/resume (the resume record and the payload check).
package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Defaults for Config fields left zero.
const (
	// DefaultSaveInterval is how often the resume record is rewritten while downloading: a
	// crash loses at most this much of the record (the pieces themselves are on disk and are
	// found again by the check, which re-hashes only what the record does not vouch for).
	DefaultSaveInterval = 30 * time.Second
	// DefaultStopTimeout bounds the "stopped" announces at shutdown.
	DefaultStopTimeout = 5 * time.Second
)

// ErrIncomplete is returned by Run for a seed-only job whose payload is not complete.
var ErrIncomplete = errors.New("payload incomplete")

// State is where a job is in its life.
type State string

// The states a job goes through.
const (
	Checking    State = "checking"
	Downloading State = "downloading"
	Seeding     State = "seeding"
	Stopping    State = "stopping"
	Stopped     State = "stopped"
	// Missing: seeding, but pieces are missing because payload files changed (or were
	// deleted) under the job and no longer match the torrent; they are not served.
	Missing State = "missing"
)

// Config is what a job needs. Torrent, DataDir and Session.PeerID are required.
type Config struct {
	Torrent *metafile.Torrent
	// DataDir holds the torrent's file or top folder.
	DataDir string
	// Name is the file or top folder's name in DataDir; empty means the torrent's name
	// (mainline's --saveas may name it otherwise).
	Name string
	// ResumePath is the resume record's file; empty means none is kept.
	ResumePath string
	// Download allows writing: missing pieces are fetched. Without it the payload must be
	// complete and is opened read-only.
	Download bool
	// Check is how the payload is checked at start.
	Check resume.Mode
	// CheckWorkers bounds hashing threads; 0 means one per CPU.
	CheckWorkers int
	// Session is the peer session's configuration (PeerID, limits, dialer...).
	Session session.Config
	// Announce is the tracker client's configuration; the job fills Tiers, InfoHash,
	// PeerID, Progress and PeerCount.
	Announce announcer.Config
	// NoAnnounce: the caller announces (the agent drives every torrent's announcer from one
	// scheduler and hands peers to Session().AddPeers); Run makes no tracker client.
	NoAnnounce bool
	// SaveInterval is how often the resume record is saved while downloading.
	SaveInterval time.Duration
	// StopTimeout bounds the stopped announces.
	StopTimeout time.Duration
	// OnCheck, when set, is told the check's progress.
	OnCheck func(resume.Progress)
	// OnSaveError, when set, is told of every failed save of the resume record (also
	// logged), so that a caller can count them.
	OnSaveError func(error)
	// WebRTC, when set, serves the torrent's ws:// and wss:// trackers: browsers (and other
	// WebRTC peers) connect over data channels to the same session as TCP peers. It runs
	// with NoAnnounce too.
	WebRTC *rtc.Transport
	// WebRTCPeers bounds this torrent's WebRTC peers (0: rtc.DefaultTorrentPeers).
	WebRTCPeers int
	// Watcher, when set, tells the running session at once that a payload file changed
	// (without it the session finds out by its poll).
	Watcher *Watcher
	// Logger receives the job's events; nil means slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a job for display.
type Stats struct {
	State      State
	Check      resume.Progress
	Session    session.Stats
	Uploaded   int64 // including earlier runs, from the resume record
	Downloaded int64
	Tracker    announcer.Status
	Complete   bool
	// PayloadChanged: payload files changed under the run, and pieces the check found are
	// not verified any more (set while the session misses them, and for good once Run
	// found so at its stop).
	PayloadChanged bool
}

// Job is one torrent being seeded or downloaded. Create with New, run with Run.
type Job struct {
	cfg   Config
	log   *slog.Logger
	done  chan struct{} // closed when every piece is verified
	ready chan struct{} // closed when the session runs

	state    atomic.Value // State
	checkN   atomic.Int64
	checkTot atomic.Int64
	sess     atomic.Pointer[session.Torrent]
	ann      atomic.Pointer[announcer.Announcer]

	baseUp, baseDown int64 // totals of earlier runs; set before the session starts
	// lost: Run stopped with pieces lost to a payload change.
	lost atomic.Bool
}

// New validates cfg and returns a job ready to Run.
func New(cfg Config) (*Job, error) {
	if cfg.Torrent == nil {
		return nil, errors.New("job: no torrent")
	}
	if !cfg.Torrent.HasV1 {
		return nil, fmt.Errorf("job: %s is a v2-only torrent: seeding needs v1 piece hashes (make it hybrid)", cfg.Torrent.Name)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Torrent.Name
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = DefaultSaveInterval
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	j := &Job{cfg: cfg, log: cfg.Logger.With("torrent", cfg.Torrent.Name), done: make(chan struct{}), ready: make(chan struct{})}
	j.state.Store(Checking)
	return j, nil
}

// InfoHash is the torrent's v1 info-hash.
func (j *Job) InfoHash() bittorrent.InfoHash { return j.cfg.Torrent.InfoHash }

// Session is the running peer session, or nil before the check has finished.
func (j *Job) Session() *session.Torrent { return j.sess.Load() }

// Done is closed once every piece is verified (at once for a complete payload).
func (j *Job) Done() <-chan struct{} { return j.done }

// Ready is closed once Run has checked the payload and the session runs: from then on
// Session is not nil and takes connections. It is never closed when Run fails before.
func (j *Job) Ready() <-chan struct{} { return j.ready }

// Check opens the payload and checks it against the resume record as Run would (Config.Check),
// without starting a session: the agent checks thousands of torrents at start and runs a
// session only for those peers ask for. When Check hashed anything and found the payload
// complete, the record is saved clean, so that the next Check or Run in Fast mode trusts it
// without hashing. It returns the pieces held and whether any piece was hashed. A payload
// that cannot be opened is an error wrapping the storage error (fs.ErrNotExist for a missing
// file, storage.ErrShort for a short one).
func (j *Job) Check(ctx context.Context) (have wire.Bitfield, hashed bool, err error) {
	files, rec, have, hashed, err := j.check(ctx)
	if err != nil {
		return have, hashed, err
	}
	defer files.Close()
	if rec != nil {
		j.baseUp, j.baseDown = rec.Uploaded, rec.Downloaded
	}
	if hashed && have.Full() {
		j.saveRecord(files, func() wire.Bitfield { return have }, true, 0, 0)
	}
	return have, hashed, nil
}

// check opens the payload, loads the record and checks the payload; the caller closes files.
func (j *Job) check(ctx context.Context) (files *storage.Files, rec *resume.Record, have wire.Bitfield, hashed bool, err error) {
	t := j.cfg.Torrent
	rec = j.loadRecord()
	// A download starting from nothing (no record, not one payload file on disk) has nothing
	// to check: hashing the sparse files Open is about to create would cost seconds a GiB.
	fresh := j.cfg.Download && rec == nil && j.nothingOnDisk()
	files, err = storage.Open(t.Layout, j.cfg.DataDir, j.cfg.Name, t.Single, storage.OpenOptions{Write: j.cfg.Download})
	if err != nil {
		return nil, nil, have, false, fmt.Errorf("open payload of %s in %s: %w", t.Name, j.cfg.DataDir, err)
	}
	if fresh {
		return files, nil, wire.NewBitfield(t.Layout.NumPieces()), false, nil
	}
	have, err = resume.Check(ctx, t, files, j.cfg.Check, rec, j.cfg.CheckWorkers, func(p resume.Progress) {
		if p.Total > 0 {
			hashed = true
		}
		j.checkN.Store(p.Done)
		j.checkTot.Store(p.Total)
		if j.cfg.OnCheck != nil {
			j.cfg.OnCheck(p)
		}
	})
	if err != nil {
		files.Close()
		return nil, nil, have, hashed, fmt.Errorf("check %s: %w", t.Name, err)
	}
	return files, rec, have, hashed, nil
}

// nothingOnDisk reports whether none of the payload's files exists (pad files aside).
func (j *Job) nothingOnDisk() bool {
	t := j.cfg.Torrent
	f, err := storage.Open(t.Layout, j.cfg.DataDir, j.cfg.Name, t.Single, storage.OpenOptions{AllowMissing: true})
	if err != nil {
		return false
	}
	defer f.Close()
	stamps, err := f.Stat()
	if err != nil {
		return false
	}
	for i, st := range stamps {
		if !t.Layout.Files[i].Pad && st.Size >= 0 {
			return false
		}
	}
	return true
}

// Stats returns a snapshot.
func (j *Job) Stats() Stats {
	s := Stats{State: j.state.Load().(State)}
	s.Check = resume.Progress{Done: j.checkN.Load(), Total: j.checkTot.Load()}
	if t := j.sess.Load(); t != nil {
		s.Session = t.Stats()
		s.Complete = s.Session.Left == 0
		if s.State == Seeding && s.Session.Rechecking {
			s.State = Checking // payload files changed: their pieces are hashed again
		} else if s.State == Seeding && !s.Complete {
			s.State = Missing
		}
	}
	s.PayloadChanged = j.lost.Load() || s.State == Missing || s.State == Checking && s.Session.Rechecking
	s.Uploaded = j.baseUp + s.Session.Uploaded
	s.Downloaded = j.baseDown + s.Session.Downloaded
	if a := j.ann.Load(); a != nil {
		s.Tracker = a.Status()
	}
	return s
}

// Run checks the payload, then seeds (and downloads, with Download) until ctx is done. On
// the way out it announces "stopped", syncs the payload and saves the resume record marked
// clean. It returns nil after a normal stop.
func (j *Job) Run(ctx context.Context) error {
	defer j.state.Store(Stopped)
	t := j.cfg.Torrent
	files, rec, have, _, err := j.check(ctx)
	if err != nil {
		return err
	}
	defer files.Close()
	if rec != nil {
		j.baseUp, j.baseDown = rec.Uploaded, rec.Downloaded
	}
	if !have.Full() && !j.cfg.Download {
		return fmt.Errorf("%w: %s in %s has %d of %d pieces", ErrIncomplete, t.Name, j.cfg.DataDir, have.Count(), have.Len())
	}
	j.log.Info("checked", "pieces", have.Count(), "of", have.Len())

	sess, err := session.New(t, files, have, j.cfg.Session)
	if err != nil {
		return fmt.Errorf("session for %s: %w", t.Name, err)
	}
	acfg := j.cfg.Announce
	acfg.Tiers = t.Trackers
	acfg.InfoHash = t.InfoHash
	acfg.PeerID = j.cfg.Session.PeerID
	acfg.Progress = func() announcer.Progress {
		st := sess.Stats()
		return announcer.Progress{Uploaded: st.Uploaded, Downloaded: st.Downloaded, Left: st.Left}
	}
	acfg.PeerCount = func() int { return sess.Stats().Peers }
	if acfg.Logger == nil {
		acfg.Logger = j.log
	}
	var ann *announcer.Announcer
	// A torrent for browsers alone lists only WebSocket trackers: WebRTC announces to them.
	browsersOnly := j.cfg.WebRTC != nil && len(WebSocketTrackers(acfg.Tiers)) == urlCount(acfg.Tiers)
	if len(acfg.Tiers) > 0 && !j.cfg.NoAnnounce && !browsersOnly {
		if ann, err = announcer.New(acfg); err != nil {
			return fmt.Errorf("tracker of %s: %w", t.Name, err)
		}
	}
	if have.Full() {
		j.state.Store(Seeding)
	} else {
		j.state.Store(Downloading)
		// From here on the payload is being written: a crash must re-verify what changed.
		j.saveRecord(files, sess.Have, false, 0, 0)
	}
	j.sess.Store(sess)
	if ann != nil {
		j.ann.Store(ann)
	}
	if j.cfg.Watcher != nil {
		paths := make([]string, len(t.Layout.Files))
		for i := range paths {
			paths[i] = files.Path(i)
		}
		defer j.cfg.Watcher.add(paths, sess.PayloadChanged)()
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	sessErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sessErr <- sess.Run(runCtx)
	}()
	close(j.ready)
	browsers := j.runWebRTC(runCtx, &wg, sess)
	if ann != nil {
		wg.Add(2)
		go func() {
			defer wg.Done()
			ann.Run(runCtx)
		}()
		go func() {
			defer wg.Done()
			pumpPeers(runCtx, ann.Peers(), sess)
		}()
	}

	err = j.watch(ctx, files, sess, ann, browsers, sessErr)
	j.state.Store(Stopping)
	if ann != nil {
		sctx, scancel := context.WithTimeout(context.Background(), j.cfg.StopTimeout)
		if serr := ann.Stop(sctx); serr != nil {
			j.log.Warn("stopped announce", "err", serr)
		}
		scancel()
	}
	cancel()
	wg.Wait()
	select {
	case e := <-sessErr:
		if err == nil && e != nil && !errors.Is(e, context.Canceled) {
			err = e
		}
	default:
	}
	if serr := files.Sync(); serr != nil && err == nil {
		err = fmt.Errorf("sync %s: %w", t.Name, serr)
	}
	st := sess.Stats()
	// The session has stopped: a change it had not yet seen is found here, and the record
	// does not vouch for it. A seed that lost pieces to a change saves the record as not
	// clean, so that the next check hashes the pieces it does not mark held rather than
	// taking them as missing.
	have = sess.Have()
	changed := j.settle(files, &have)
	clean := !changed && (j.cfg.Download || have.Full())
	j.lost.Store(!clean)
	j.saveRecord(files, func() wire.Bitfield { return have }, clean, st.Uploaded, st.Downloaded)
	return err
}

// settle finds payload files changed since they were verified (or since the last call)
// and takes their pieces out of have; the files' new states become their baselines. Our
// own writes are not changes (storage.Files.Changes). It reports whether it found any.
// Only when nothing else reads the baselines: the session has stopped, or it is not a
// seed (a seed's session calls Changes itself).
func (j *Job) settle(files *storage.Files, have *wire.Bitfield) bool {
	changes, err := files.Changes(nil)
	if err != nil {
		j.log.Warn("payload check", "err", err)
		return false
	}
	for _, c := range changes {
		first, end := j.cfg.Torrent.Layout.FilePieces(c.File)
		for i := first; i < end; i++ {
			have.Clear(i)
		}
		j.log.Warn("payload file changed: its pieces are not recorded as verified", "file", files.Path(c.File), "change", c.Kind.String())
	}
	files.Rebase(changes)
	return len(changes) > 0
}

// watch waits for the end, saving the resume record while downloading and reporting
// completion to the trackers, WebSocket ones (browsers) included.
func (j *Job) watch(ctx context.Context, files *storage.Files, sess *session.Torrent, ann *announcer.Announcer, browsers []*rtc.Client, sessErr <-chan error) error {
	tick := time.NewTicker(j.cfg.SaveInterval)
	defer tick.Stop()
	sessDone := sess.Done()
	if j.state.Load().(State) == Seeding {
		close(j.done)
		sessDone = nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-sessErr:
			if e == nil {
				e = errors.New("session ended")
			}
			return fmt.Errorf("session of %s: %w", j.cfg.Torrent.Name, e)
		case <-sessDone:
			sessDone = nil
			j.log.Info("download complete")
			if ann != nil {
				ann.Completed()
			}
			for _, cl := range browsers {
				cl.Completed()
			}
			st := sess.Stats()
			if err := files.Sync(); err != nil {
				j.log.Warn("sync", "err", err)
			}
			have := sess.Have()
			j.settle(files, &have)
			j.saveRecord(files, func() wire.Bitfield { return have }, false, st.Uploaded, st.Downloaded)
			j.state.Store(Seeding)
			close(j.done)
		case <-tick.C:
			if j.state.Load().(State) == Downloading {
				st := sess.Stats()
				have := sess.Have()
				j.settle(files, &have)
				j.saveRecord(files, func() wire.Bitfield { return have }, false, st.Uploaded, st.Downloaded)
			}
		}
	}
}

// pumpPeers hands every batch of tracker peers to the session.
func pumpPeers(ctx context.Context, peers <-chan []netip.AddrPort, sess *session.Torrent) {
	for {
		select {
		case <-ctx.Done():
			return
		case p, ok := <-peers:
			if !ok {
				return
			}
			sess.AddPeers(p)
		}
	}
}

// loadRecord reads the resume record; a corrupt one is moved aside (never deleted) and the
// check then hashes everything.
func (j *Job) loadRecord() *resume.Record {
	if j.cfg.ResumePath == "" {
		return nil
	}
	rec, err := resume.Load(j.cfg.ResumePath)
	switch {
	case err == nil:
		if rec.InfoHash != j.cfg.Torrent.InfoHash {
			j.log.Warn("resume record is for another torrent; checking everything", "path", j.cfg.ResumePath)
			return nil
		}
		return rec
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		aside := fmt.Sprintf("%s.corrupt-%s", j.cfg.ResumePath, time.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(j.cfg.ResumePath, aside); rerr != nil {
			j.log.Error("resume record unreadable and cannot be moved aside", "path", j.cfg.ResumePath, "err", err, "rename", rerr)
		} else {
			j.log.Error("resume record unreadable; moved aside, checking everything", "path", j.cfg.ResumePath, "moved_to", aside, "err", err)
		}
		return nil
	}
}

// saveRecord writes the resume record; up and down are this run's totals. The files'
// stamps are those they had when their pieces were verified (storage.Files.Stamps), never
// what is on disk now: a file changed since is not vouched for, and the next check hashes
// it. They are read before have, which a session clears before it moves a stamp.
func (j *Job) saveRecord(files *storage.Files, have func() wire.Bitfield, clean bool, up, down int64) {
	if j.cfg.ResumePath == "" {
		return
	}
	stamps := files.Stamps()
	held := have()
	rec := &resume.Record{
		InfoHash:   j.cfg.Torrent.InfoHash,
		Have:       held.Bytes(),
		Files:      stamps,
		Clean:      clean,
		Uploaded:   j.baseUp + up,
		Downloaded: j.baseDown + down,
	}
	if err := rec.Save(j.cfg.ResumePath); err != nil {
		j.saveFailed(err)
	}
}

// saveFailed logs a failed save of the resume record and reports it to OnSaveError.
func (j *Job) saveFailed(err error) {
	j.log.Warn("resume record not saved", "path", j.cfg.ResumePath, "err", err)
	if j.cfg.OnSaveError != nil {
		j.cfg.OnSaveError(err)
	}
}
