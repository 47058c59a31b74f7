package e2e

// The tracker proven with real BitTorrent clients (issue 3, "Proven with real clients"):
// aria2 seeds and libtorrent downloads through `tracker`, bytes verified; ctorrent on
// 127.0.0.2 is handed out with its own address; a scrape after the download counts it.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// trackerTestArgs are short intervals so that a client that announced before its peers did
// asks again within seconds (libtorrent via lt.py honours down to 5 s, aria2 re-announces
// every min interval). The tracker warns about intervals under 5 minutes; that is expected.
var trackerTestArgs = []string{"--reannounce_interval", "10", "--min_interval", "5"}

// Client addresses: each client its own loopback IP (why: clients_test.go).
const (
	ipSeeder  = "127.0.0.2"
	ipGetter  = "127.0.0.3"
	ipCtorent = "127.0.0.2"
)

func TestTrackerAria2SeedsLibtorrentDownloads(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	seedDir := filepath.Join(t.TempDir(), "seed")
	data := writePayload(t, seedDir, "payload.bin", 4<<20+12345) // a short last piece
	torrent := makeTorrent(t, filepath.Join(seedDir, "payload.bin"), tp.Announce)
	ti := readTorrent(t, torrent)
	scrapeURL := tp.Base + "/scrape"

	startAria2Seed(t, torrent, seedDir, ipSeeder)
	waitSeeder(t, scrapeURL, ti)

	outDir := filepath.Join(t.TempDir(), "get")
	libtorrentGet(t, torrent, outDir, ipGetter, 2*time.Minute)
	sameFile(t, filepath.Join(outDir, "payload.bin"), data)

	// libtorrent announced event=completed before it stopped: the tracker counts it.
	var st scrapeStats
	testenv.WaitFor(t, 30*time.Second, "scrape to count the completed download", func() error {
		var err error
		if st, err = scrape(scrapeURL, ti.InfoHash); err != nil {
			return err
		}
		if st.Downloaded < 1 {
			return fmt.Errorf("scrape: %+v, want downloaded >= 1", st)
		}
		return nil
	})
	t.Logf("scrape after the download: %+v", st)
}

func TestTrackerHandsOutCtorrentWithItsOwnIP(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	seedDir := filepath.Join(t.TempDir(), "seed")
	data := writePayload(t, seedDir, "payload.bin", 2<<20)
	torrent := makeTorrent(t, filepath.Join(seedDir, "payload.bin"), tp.Announce)
	ti := readTorrent(t, torrent)

	_, ctPort := startCtorrent(t, torrent, seedDir, ipCtorent)
	want := fmt.Sprintf("%s:%d", ipCtorent, ctPort)

	// Another peer announces from 127.0.0.1 (a port where nothing listens) and must be
	// given ctorrent at the address ctorrent connected from, not at 127.0.0.1.
	probePort := testenv.FreePort(t, "127.0.0.1")
	probeID := "-WS0001-probe0000001"
	var peers []string
	testenv.WaitFor(t, 60*time.Second, "ctorrent in the tracker's compact peer list", func() error {
		r, err := announce(tp.Announce, announceQuery(ti.InfoHash, probeID, probePort, 1, "compact=1", "numwant=50"))
		if err != nil {
			return err
		}
		if peers, err = compactPeers(r.Peers); err != nil {
			return err
		}
		if !slices.Contains(peers, want) {
			return fmt.Errorf("peers %v lack %s", peers, want)
		}
		return nil
	})
	if bad := fmt.Sprintf("127.0.0.1:%d", ctPort); slices.Contains(peers, bad) {
		t.Errorf("peers %v also list ctorrent as %s", peers, bad)
	}
	if _, err := announce(tp.Announce, announceQuery(ti.InfoHash, probeID, probePort, 1, "event=stopped")); err != nil {
		t.Fatalf("probe stopped: %v", err)
	}

	// The address handed out works: libtorrent downloads from ctorrent through the tracker.
	outDir := filepath.Join(t.TempDir(), "get")
	libtorrentGet(t, torrent, outDir, ipGetter, 2*time.Minute)
	sameFile(t, filepath.Join(outDir, "payload.bin"), data)
}

// waitSeeder waits until a scrape shows at least one seeder of ti: the seeder's client has
// hash-checked its data and announced.
func waitSeeder(t testing.TB, scrapeURL string, ti torrentInfo) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, "the seeder to announce", func() error {
		st, err := scrape(scrapeURL, ti.InfoHash)
		if err != nil {
			return err
		}
		if st.Complete < 1 {
			return fmt.Errorf("scrape: %+v, want complete >= 1", st)
		}
		return nil
	})
}
func TestTrackerLibtorrentOverUDP(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	seedDir := filepath.Join(t.TempDir(), "seed")
	data := writePayload(t, seedDir, "payload.bin", 1<<20)
	torrent := makeTorrent(t, filepath.Join(seedDir, "payload.bin"), tp.Announce)
	ti := readTorrent(t, torrent)

	startAria2Seed(t, torrent, seedDir, ipSeeder)
	waitSeeder(t, tp.Base+"/scrape", ti)

	// The same torrent (same info-hash) with only a BEP 15 tracker: libtorrent finds the
	// HTTP-announced seeder over UDP.
	udpTorrent := retrackTorrent(t, torrent, "udp://"+tp.UDPAddr()+"/announce")
	if got := readTorrent(t, udpTorrent).InfoHash; got != ti.InfoHash {
		t.Fatalf("retracked torrent has info-hash %x, want %x", got, ti.InfoHash)
	}
	outDir := filepath.Join(t.TempDir(), "get")
	libtorrentGet(t, udpTorrent, outDir, ipGetter, 2*time.Minute)
	sameFile(t, filepath.Join(outDir, "payload.bin"), data)
}

// retrackTorrent writes a copy of the .torrent at src whose only tracker is announceURL; the
// info dictionary is copied byte for byte, so the info-hash stays the same.
func retrackTorrent(t testing.TB, src, announceURL string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]bencode.Bytes
	if err := bencode.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	delete(m, "announce-list")
	if m["announce"], err = bencode.Marshal(announceURL); err != nil {
		t.Fatal(err)
	}
	out, err := bencode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "retracked-"+filepath.Base(src))
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}
