package agent

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/webswarm/webswarm/seedctl/job"
)

// payloadEvents handles file events on payload files (the watcher reports every path under
// Dir that changed; payloads usually sit beside their .torrent). A torrent with a running
// session learns of it from its job's Watcher and hashes the changed file's pieces again
// itself; an idle seeding torrent, which trusts its last check, is checked again: it leaves
// seeding until its payload is found whole (or goes to error if it is not).
func (a *Agent) payloadEvents(paths map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.byHash {
		if t.state != Seeding || t.run != nil {
			continue
		}
		top := filepath.Join(t.dataDir, t.name)
		for p := range paths {
			if p == top || strings.HasPrefix(p, top+string(filepath.Separator)) {
				a.log.Warn("payload changed under an idle torrent: checking it again", "torrent", t.name, "path", p)
				a.queueCheckLocked(t)
				break
			}
		}
	}
}

// runningJob is t's job once its session started, else nil.
func (a *Agent) runningJob(t *torrent) *job.Job {
	a.mu.Lock()
	r := t.run
	a.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case <-r.started:
		return r.job
	default:
		return nil
	}
}

// sessionLeft is what t's running session misses (pieces lost to a payload change), for
// the announce's left: 0 without a session (an idle torrent seeding is whole).
func (a *Agent) sessionLeft(t *torrent) int64 {
	if j := a.runningJob(t); j != nil {
		return j.Stats().Session.Left
	}
	return 0
}

// sessionView corrects ti for a torrent whose running session lost pieces to a payload
// change: checking while they are hashed again, error while some do not match.
func (a *Agent) sessionView(t *torrent, ti *TorrentInfo) {
	j := a.runningJob(t)
	if j == nil {
		return
	}
	st := j.Stats()
	if st.Session.NumPieces == 0 {
		return
	}
	switch st.State {
	case job.Checking:
		ti.State = Checking
	case job.Missing:
		ti.State = Error
		ti.Error = fmt.Sprintf("payload changed while seeding: %d of %d pieces match the torrent", st.Session.Have, st.Session.NumPieces)
	default:
		return
	}
	ti.Progress = float64(st.Session.Have) / float64(st.Session.NumPieces)
}
