package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// This file holds the Agent's Controller methods; control_api.go defines the interface, its
// types and errors, and package api serves it over HTTP.

// Status summarises the agent.
func (a *Agent) Status() Status {
	s := Status{
		Version:    a.cfg.Version,
		Dir:        a.cfg.Dir,
		StateDir:   a.cfg.StateDir,
		ListenPort: int(a.port),
		Started:    a.started,
		ByState:    make(map[State]int),
	}
	for _, ti := range a.infos(false) {
		s.Torrents++
		s.ByState[ti.State]++
		s.Peers += ti.Peers
		s.WebRTC += ti.WebRTC
		s.UploadRate += ti.UploadRate
		s.Uploaded += ti.Uploaded
	}
	return s
}

// List returns every torrent, sorted by name, then info-hash.
func (a *Agent) List() []TorrentInfo { return a.infos(true) }

// infos snapshots every torrent; sorted when asked.
func (a *Agent) infos(sorted bool) []TorrentInfo {
	a.mu.Lock()
	ts := make([]*torrent, 0, len(a.byHash))
	for _, t := range a.byHash {
		ts = append(ts, t)
	}
	a.mu.Unlock()
	out := make([]TorrentInfo, len(ts))
	for i, t := range ts {
		out[i] = a.info(t)
	}
	if sorted {
		slices.SortFunc(out, func(x, y TorrentInfo) int {
			return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.InfoHash, y.InfoHash))
		})
	}
	return out
}

// info snapshots one torrent.
func (a *Agent) info(t *torrent) TorrentInfo {
	up, down, peers, rate := a.figures(t)
	webrtc := a.webrtcPeers(t)
	a.mu.Lock()
	ti := TorrentInfo{
		InfoHash:   t.ih.String(),
		Name:       t.name,
		Size:       t.size,
		State:      t.state,
		Error:      t.err,
		Peers:      peers,
		WebRTC:     webrtc,
		UploadRate: rate,
		Uploaded:   up,
		Downloaded: down,
		Torrent:    t.path,
		Data:       t.dataDir,
		Seeders:    -1,
		Leechers:   -1,
		Completed:  -1,
	}
	if t.scrapeOK {
		ti.Seeders, ti.Leechers = t.scraped.seeders, t.scraped.leechers
		ti.Completed = t.scraped.downloaded
	}
	a.mu.Unlock()
	switch ti.State {
	case Checking:
		if tot := t.checkTotal.Load(); tot > 0 {
			ti.Progress = float64(t.checkDone.Load()) / float64(tot)
		}
	case Seeding, Queued, Paused:
		if ti.Error == "" {
			ti.Progress = 1
		}
	}
	if ti.State == Seeding {
		a.sessionView(t, &ti)
	}
	if t.size > 0 {
		ti.Ratio = float64(up) / float64(t.size)
	}
	a.sched.mu.Lock()
	ann := t.ann
	a.sched.mu.Unlock()
	if ann != nil {
		st := ann.Status()
		if !st.LastAnnounce.IsZero() && st.Err == nil {
			ti.Seeders, ti.Leechers = st.Seeders, st.Leechers
			if st.Downloaded > 0 {
				// BEP 3 replies need not carry it: 0 may mean "not sent".
				ti.Completed = st.Downloaded
			}
		}
		switch {
		case st.Failure != "":
			ti.Tracker = "failure: " + st.Failure
		case st.Err != nil:
			ti.Tracker = "error: " + st.Err.Error()
		case st.Warning != "":
			ti.Tracker = "warning: " + st.Warning
		}
	}
	return ti
}

// torrentOf finds ih or fails with ErrUnknown.
func (a *Agent) torrentOf(ih bittorrent.InfoHash) (*torrent, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.byHash[ih]
	if t == nil {
		return nil, fmt.Errorf("%w: %x", ErrUnknown, ih[:])
	}
	return t, nil
}

// Get returns one torrent.
func (a *Agent) Get(ih bittorrent.InfoHash) (TorrentInfo, error) {
	t, err := a.torrentOf(ih)
	if err != nil {
		return TorrentInfo{}, err
	}
	return a.info(t), nil
}

// Add seeds the .torrent at torrentPath with its payload in dataDir ("" = beside the
// .torrent, or --data). The torrent is kept across restarts; a torrent already there is
// ErrConflict, an unreadable one ErrInvalid.
func (a *Agent) Add(ctx context.Context, torrentPath, dataDir string) (TorrentInfo, error) {
	if torrentPath == "" {
		return TorrentInfo{}, fmt.Errorf("%w: no torrent path", ErrInvalid)
	}
	torrentPath = absPath(torrentPath)
	// Read without blocking: a FIFO must not pin the request (and an OS thread) for good.
	mi, err := a.cfg.TorrentLimits.Load(torrentPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return TorrentInfo{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if reason := a.metrics.refused(err); reason != RefusedUnreadable {
			return TorrentInfo{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return TorrentInfo{}, err
	}
	if dataDir == "" {
		dataDir = a.dataDirFor(torrentPath)
	}
	dataDir = absPath(dataDir)
	a.mu.Lock()
	if t := a.byHash[mi.InfoHash]; t != nil {
		a.mu.Unlock()
		return TorrentInfo{}, fmt.Errorf("%w: %s is already seeded from %s", ErrConflict, mi.Name, t.path)
	}
	if t := a.byPath[torrentPath]; t != nil {
		a.removeLocked(t)
	}
	a.persist.Removed = set(a.persist.Removed, mi.InfoHash, false)
	a.persist.Added = append(a.persist.Added, added{Torrent: torrentPath, Data: dataDir})
	t := a.addTorrentLocked(mi, torrentPath, dataDir, true)
	a.mu.Unlock()
	a.savePersistent()
	a.log.Info("torrent added", "torrent", mi.Name, "path", torrentPath, "data", dataDir)
	return a.info(t), nil
}

// change runs fn on the torrent ih with a.mu held, then saves the agent's state when save is
// set and fn succeeded. It is how Remove, Pause, Resume and Verify find their torrent.
func (a *Agent) change(ih bittorrent.InfoHash, save bool, fn func(t *torrent) error) (*torrent, error) {
	a.mu.Lock()
	t := a.byHash[ih]
	if t == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("%w: %x", ErrUnknown, ih[:])
	}
	err := fn(t)
	a.mu.Unlock()
	if err == nil && save {
		a.savePersistent()
	}
	return t, err
}

// Remove stops seeding ih (announcing "stopped"); its files are left alone. A torrent found
// in Dir stays removed across rescans and restarts until it is added again.
func (a *Agent) Remove(ih bittorrent.InfoHash) error {
	t, err := a.change(ih, true, func(t *torrent) error {
		a.removeLocked(t)
		a.persist.Added = slices.DeleteFunc(a.persist.Added, func(ad added) bool { return ad.Torrent == t.path })
		if !t.api {
			a.persist.Removed = set(a.persist.Removed, ih, true)
		}
		a.persist.Paused = set(a.persist.Paused, ih, false)
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info("torrent removed", "torrent", t.name)
	return nil
}

// Pause stops seeding ih until Resume (kept across restarts).
func (a *Agent) Pause(ih bittorrent.InfoHash) error {
	_, err := a.change(ih, true, func(t *torrent) error {
		if !t.paused {
			a.leaveSeedingLocked(t)
			t.paused, t.state, t.ann0 = true, Paused, nil
			a.persist.Paused = set(a.persist.Paused, ih, true)
		}
		return nil
	})
	return err
}

// Resume undoes Pause: the torrent is checked (trusting its resume record) and seeds.
func (a *Agent) Resume(ih bittorrent.InfoHash) error {
	_, err := a.change(ih, true, func(t *torrent) error {
		if t.paused {
			t.paused = false
			t.storageGone = false
			a.persist.Paused = set(a.persist.Paused, ih, false)
			a.queueCheckLocked(t)
		}
		return nil
	})
	return err
}

// Verify queues a full re-check of ih: every piece is hashed again.
func (a *Agent) Verify(ih bittorrent.InfoHash) error {
	_, err := a.change(ih, false, func(t *torrent) error {
		if t.paused {
			return fmt.Errorf("%w: %s is paused: resume it first", ErrConflict, t.name)
		}
		t.fullCheck = true
		t.retryAt = time.Time{}
		a.queueCheckLocked(t)
		return nil
	})
	return err
}
