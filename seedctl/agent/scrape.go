package agent

import (
	"context"
	"time"

	"github.com/webswarm/webswarm/seedctl/announcer"
)

// scrapeTimeout bounds one scrape of an idle torrent.
const scrapeTimeout = 15 * time.Second

// scrapeBatch bounds the scrapes of one round, so that thousands of paused torrents reach
// their trackers spread over several rounds.
const scrapeBatch = 50

// scrapeLoop keeps the tracker's seeders, leechers and completed counts current for torrents
// that do not announce — paused, queued or in error — by a scrape (BEP 48, or BEP 15 for udp
// trackers) every ScrapeInterval. Announcing torrents get the same counts from each announce
// reply.
func (a *Agent) scrapeLoop(ctx context.Context) {
	tick := time.NewTicker(min(a.cfg.ScrapeInterval, time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, t := range a.scrapeDue(time.Now()) {
			sctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
			st, err := announcer.Scrape(sctx, a.cfg.Announce.HTTP, t.scrapeURL, t.ih)
			cancel()
			if ctx.Err() != nil {
				return
			}
			a.mu.Lock()
			t.scrapedAt = time.Now()
			if err == nil {
				t.scraped, t.scrapeOK = scrapeCounts{st.Seeders, st.Leechers, st.Downloaded}, true
			} else {
				t.scrapeOK = false
				a.log.Debug("scrape", "torrent", t.name, "err", err)
			}
			a.mu.Unlock()
		}
	}
}

// scrapeDue lists the idle torrents whose counts are older than ScrapeInterval.
func (a *Agent) scrapeDue(now time.Time) []*torrent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var due []*torrent
	for _, t := range a.byHash {
		if t.scrapeURL == "" || t.removed || now.Sub(t.scrapedAt) < a.cfg.ScrapeInterval {
			continue
		}
		if t.state != Paused && t.state != Queued && t.state != Error {
			continue
		}
		due = append(due, t)
		if len(due) == scrapeBatch {
			break
		}
	}
	return due
}
