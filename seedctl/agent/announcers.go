package agent

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// newAnnouncer makes t's tracker client, nil for a torrent without HTTP or UDP trackers
// (none, or only WebSocket ones: those are announced to by its session over WebRTC).
func (a *Agent) newAnnouncer(t *torrent, mi *metafile.Torrent) (*announcer.Announcer, error) {
	if len(job.WebSocketTrackers(mi.Trackers)) == urlCount(mi.Trackers) {
		return nil, nil
	}
	cfg := a.cfg.Announce
	cfg.Tiers = mi.Trackers
	cfg.InfoHash = t.ih
	cfg.PeerID = a.cfg.PeerID
	cfg.Port = a.port
	cfg.Logger = cmp.Or(cfg.Logger, a.log)
	cfg.Progress = func() announcer.Progress {
		up, down, _, _ := a.figures(t)
		a.mu.Lock()
		startUp, startDown := t.startUp, t.startDown
		a.mu.Unlock()
		return announcer.Progress{Uploaded: up - startUp, Downloaded: down - startDown, Left: a.sessionLeft(t)}
	}
	ann, err := announcer.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tracker of %s: %w", t.name, err)
	}
	return ann, nil
}

// announced is the scheduler's report of one announce: counted, and peers are dialled when
// the tracker says someone is downloading.
func (a *Agent) announced(t *torrent, _, after announcer.Status, peers []netip.AddrPort) {
	a.metrics.announce(after)
	if len(peers) == 0 || after.Leechers == 0 {
		return
	}
	if s := a.session(t); s != nil {
		s.AddPeers(peers)
	}
}

// stopAnnouncer sends "stopped" for an announcer taken off the schedule, in the background.
func (a *Agent) stopAnnouncer(ann *announcer.Announcer) {
	a.sessions.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
		defer cancel()
		ann.Stop(ctx)
	})
}

// stopAll announces "stopped" for every announcer at once, with at most DefaultStopWorkers
// in flight, within StopTimeout.
func (a *Agent) stopAll(anns []*announcer.Announcer) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
	defer cancel()
	work := make(chan *announcer.Announcer)
	var wg sync.WaitGroup
	for range min(DefaultStopWorkers, len(anns)) {
		wg.Go(func() {
			for ann := range work {
				ann.Stop(ctx)
			}
		})
	}
	for _, ann := range anns {
		work <- ann
	}
	close(work)
	wg.Wait()
}

// urlCount is the number of tracker URLs in tiers.
func urlCount(tiers [][]string) int {
	n := 0
	for _, tier := range tiers {
		n += len(tier)
	}
	return n
}
