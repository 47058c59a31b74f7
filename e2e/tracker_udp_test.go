package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestTrackerUDPWithRealClients: libtorrent seeds and libtorrent downloads with a udp://
// announce URL (BEP 15; aria2 speaks UDP trackers only with DHT on), so both clients use the
// tracker's UDP frontend; the bytes verify and the HTTP scrape sees the same swarm.
func TestTrackerUDPWithRealClients(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	if !strings.Contains(tp.Proc.Output(), "outside 5 min") {
		t.Errorf("no start-up warning about a 10 s interval:\n%s", tp.Proc.Output())
	}
	seedDir := filepath.Join(t.TempDir(), "seed")
	data := writePayload(t, seedDir, "payload.bin", 3<<20+777)
	torrent := makeTorrent(t, filepath.Join(seedDir, "payload.bin"), fmt.Sprintf("udp://127.0.0.1:%d/announce", tp.Port))
	ti := readTorrent(t, torrent)

	startLibtorrentSeed(t, torrent, seedDir, ipSeeder)
	waitSeeder(t, tp.Base+"/scrape", ti)

	outDir := filepath.Join(t.TempDir(), "get")
	libtorrentGet(t, torrent, outDir, ipGetter, 2*time.Minute)
	sameFile(t, filepath.Join(outDir, "payload.bin"), data)

	testenv.WaitFor(t, 30*time.Second, "the UDP completion counted", func() error {
		st, err := scrape(tp.Base+"/scrape", ti.InfoHash)
		if err != nil {
			return err
		}
		if st.Downloaded < 1 {
			return fmt.Errorf("scrape %+v", st)
		}
		return nil
	})
	body, err := trackerGet(tp.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `webswarm_tracker_udp_packets_total{action="announce",outcome="ok"}`) {
		t.Error("no UDP announces counted in /metrics")
	}
}
