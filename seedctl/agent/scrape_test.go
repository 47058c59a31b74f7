package agent

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// A paused torrent does not announce, but the tracker's counts for it stay current: the
// agent scrapes it (here every 100 ms) and List shows what other peers announced since.
func TestPausedTorrentScraped(t *testing.T) {
	tr := startTracker(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.ScrapeInterval = 100 * time.Millisecond
	r := start(t, cfg)
	ih := publish(t, dir, "scraped.iso", tr.URL)
	r.waitState(t, ih, Seeding)
	h := mustHash(t, ih)
	if err := r.Pause(h); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, ih, Paused)

	// Two other peers arrive while the agent is paused: one seeder, one leecher.
	for i, left := range []int{0, 100} {
		q := url.Values{
			"info_hash": {string(h[:])},
			"peer_id":   {fmt.Sprintf("-XX0001-scrapetest%02d", i)},
			"port":      {fmt.Sprint(7000 + i)},
			"uploaded":  {"0"}, "downloaded": {"0"},
			"left": {fmt.Sprint(left)},
		}
		resp, err := http.Get(tr.URL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitUntil(t, "the paused torrent's counts from a scrape", func() bool {
		ti, err := r.Get(h)
		return err == nil && ti.Seeders == 1 && ti.Leechers == 1
	})
}
