package agent

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// torrent is one torrent the agent knows. An idle seeding torrent is this struct and its
// announcer, nothing more: no goroutine, no open file, no parsed metainfo (the .torrent is
// parsed again when a session starts). Fields below mu are guarded by Agent.mu.
type torrent struct {
	ih      bittorrent.InfoHash
	name    string
	size    int64
	path    string // the .torrent
	dataDir string // holds the payload file or top folder
	api     bool   // added through the Controller, not found in Dir
	browser bool   // lists a ws:// or wss:// tracker: WebRTC peers, when the agent has a Transport
	seq     uint64 // arrival order, for the max-active queue

	checkDone, checkTotal atomic.Int64 // bytes, while checking

	// Guarded by Agent.mu.
	state        State
	err          string
	paused       bool // by the operator (persisted)
	storageGone  bool // the data directory is missing: paused until it is back
	inCheckQueue bool
	fullCheck    bool              // the next check hashes everything (Verify)
	mi           *metafile.Torrent // held from scan to the first check only
	failures     int
	retryAt      time.Time
	run          *run // the running session, nil when idle
	removed      bool
	baseUp       int64 // upload total of earlier sessions (resume record)
	baseDown     int64
	startUp      int64                // baseUp when the agent took the torrent: what announces count from
	startDown    int64                // baseDown then
	startSet     bool                 // startUp and startDown are set (by the first check)
	seeding      bool                 // counted in Agent.seeding (holds a max-active slot)
	ann0         *announcer.Announcer // made by the check, waiting for a max-active slot
	scrapeURL    string               // the first tracker, scraped while the torrent does not announce
	scraped      scrapeCounts         // the last scrape's counts, valid when scrapeOK
	scrapeOK     bool
	scrapedAt    time.Time

	// Announce scheduling, guarded by scheduler.mu.
	ann      *announcer.Announcer
	due      time.Time
	heapIdx  int  // -1 when not in the heap
	inFlight bool // a worker is stepping ann
	annStop  bool // stop ann when the worker is done with it
}

// scrapeCounts are the counts a torrent keeps of its last scrape: the three a status shows,
// not the whole announcer.Status (152 bytes, in every one of tens of thousands of torrents).
type scrapeCounts struct {
	seeders, leechers, downloaded int
}

// run is a torrent's session: a job run on demand and stopped when idle.
type run struct {
	cancel  context.CancelFunc
	job     *job.Job      // set before started is closed
	started chan struct{} // the job exists (or done is closed)
	done    chan struct{}
	lastUse atomic.Int64 // unix nanoseconds of the last sign of use
}

// addTorrentLocked registers a parsed torrent and queues its check. The caller holds a.mu.
func (a *Agent) addTorrentLocked(mi *metafile.Torrent, path, dataDir string, api bool) *torrent {
	a.seq++
	t := &torrent{
		ih:      mi.InfoHash,
		name:    mi.Name,
		size:    mi.Layout.Total,
		path:    path,
		dataDir: dataDir,
		api:     api,
		seq:     a.seq,
		mi:      mi,
		heapIdx: -1,
		state:   Queued,
		paused:  a.persist.paused(mi.InfoHash),
		browser: len(job.WebSocketTrackers(mi.Trackers)) > 0,
	}
	if len(mi.Trackers) > 0 && len(mi.Trackers[0]) > 0 {
		t.scrapeURL = mi.Trackers[0][0]
	}
	a.byHash[t.ih] = t
	a.byPath[path] = t
	if t.paused {
		t.state = Paused
		t.mi = nil
		return t
	}
	a.queueCheckLocked(t)
	return t
}

// removeLocked forgets t: its seeding ends ("stopped" announced) and its session stops.
func (a *Agent) removeLocked(t *torrent) {
	a.leaveSeedingLocked(t)
	t.removed = true
	t.mi = nil
	delete(a.byHash, t.ih)
	if a.byPath[t.path] == t {
		delete(a.byPath, t.path)
	}
	if t.inCheckQueue {
		a.checkQ = slices.DeleteFunc(a.checkQ, func(q *torrent) bool { return q == t })
		t.inCheckQueue = false
	}
	a.hashList = nil
}

// dataDirFor is where the payload of the torrent at path is.
func (a *Agent) dataDirFor(path string) string {
	if a.cfg.Data != "" {
		return a.cfg.Data
	}
	return filepath.Dir(path)
}
