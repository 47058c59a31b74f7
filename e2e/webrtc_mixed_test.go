package e2e

// seedctl between browsers and desktop clients over WebRTC, in the two settings of issue 15
// the one-peer tests leave out: a swarm of Chromium, libtorrent and seedctl, where the
// browser's pieces reach it from libtorrent through seedctl; and a seeder killed with SIGKILL
// mid-transfer and started again, which the page must find and finish from. Both run inside
// a private network namespace (inNetns, browser_swarm_test.go) and reuse the one-peer tests'
// site and driver (startRTCSite, startRTCDriver).

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// rtcPrograms are the programs a WebRTC browser test runs: the npm modules (webtorrent,
// puppeteer-core), Chromium, node, nginx and the built seedctl.
type rtcPrograms struct {
	modules, chromium, node, nginx, seedctl string
}

// requireRTCPrograms finds them (a missing one skips the test, or fails it under
// E2E_REQUIRE=1) and builds seedctl and the tracker, before the test enters its namespace.
func requireRTCPrograms(t *testing.T) rtcPrograms {
	t.Helper()
	p := rtcPrograms{modules: browserModules(t), chromium: testenv.Require(t, "chromium", "chromium"),
		node: testenv.Require(t, "node", "nodejs"), nginx: testenv.Require(t, "nginx", "nginx"),
		seedctl: testenv.Build(t, "./seedctl")}
	testenv.Build(t, "./tracker")
	return p
}

// rtcPayload writes size random bytes to a file called name in a directory of its own,
// outside htdocs (nginx cannot serve it, only its .torrent), and returns the file's path, the
// bytes and their SHA-1.
func rtcPayload(t *testing.T, name string, size int) (file string, data []byte, sum [sha1.Size]byte) {
	t.Helper()
	data = wsdRandom(size)
	file = filepath.Join(t.TempDir(), name)
	wsWriteFile(t, file, data)
	return file, data, sha1.Sum(data)
}

// rtcMakeTorrent makes a .torrent of file under the site's htdocs/t, readable by nginx's
// worker, with one tier for each tracker and no web seed, and returns its path and URL.
func rtcMakeTorrent(t *testing.T, seedctl string, s rtcSite, file string, extra []string, trackers ...string) (path, url string) {
	t.Helper()
	path = filepath.Join(s.htdocs, "t", filepath.Base(file)+".torrent")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"make", file, "-o", path, "--quiet"}
	for _, tr := range trackers {
		args = append(args, "--tracker", tr)
	}
	r := scRunProgram(t, "", 2*time.Minute, seedctl, append(args, extra...)...)
	if r.Code != 0 {
		t.Fatalf("make: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if show := scShow(t, path); len(show.WebSeeds) != 0 || len(show.Trackers) != len(trackers) {
		t.Fatalf("the torrent lists web seeds %v and trackers %v; want only %v", show.WebSeeds, show.Trackers, trackers)
	}
	return path, s.site + "/t/" + filepath.Base(path)
}

// checkRTCPage fails the test unless the page's result is the whole file (its SHA-1 sum, size
// bytes), every byte from WebRTC peers and none from a web seed.
func checkRTCPage(t *testing.T, page rtcPageResult, sum [sha1.Size]byte, size int64) {
	t.Helper()
	if want := hex.EncodeToString(sum[:]); page.SHA1 != want || page.Length != size {
		t.Errorf("page: SHA-1 %q of %d bytes, the file's %s of %d", page.SHA1, page.Length, want, size)
	}
	if page.FromWebSeed != 0 || page.FromPeers < size {
		t.Errorf("page: %d bytes from peers, %d from a web seed; want all %d from seedctl over WebRTC", page.FromPeers, page.FromWebSeed, size)
	}
}

// rtcWSAnnounce is the site's ws:// announce URL.
func rtcWSAnnounce(s rtcSite) string {
	return "ws" + strings.TrimPrefix(s.site, "http") + "/announce"
}

// TestWebRTCMixedSwarm: Chromium (webtorrent), libtorrent and `seedctl get` in one swarm,
// through our tracker behind nginx; the torrent lists the ws:// and the http:// announce and
// no web seed. Nobody starts with the whole file: seedctl has its first half, libtorrent its
// second, the browser nothing. libtorrent speaks only TCP and the browser only WebRTC, so
// seedctl is each one's only peer: libtorrent gets the first half from seedctl, seedctl the
// second half from libtorrent, and the browser the whole file from seedctl — its second half
// having come from libtorrent through seedctl. Every one completes with the file's bytes (the
// page's SHA-1, libtorrent's and seedctl's files), each got what it lacked from another, and
// the tracker's stats.json counts the browser and the desktop peers in the one swarm.
func TestWebRTCMixedSwarm(t *testing.T) {
	requireLibtorrent(t)
	progs := requireRTCPrograms(t)
	if inNetns(t) {
		return
	}
	s := startRTCSite(t, progs.nginx, progs.modules)

	// 8 MiB in 256 KiB pieces: the halves are whole pieces. The payload lives outside
	// htdocs: nginx cannot serve it, only its .torrent.
	const size, half = 8 << 20, 4 << 20
	file, data, sum := rtcPayload(t, "mixed.bin", size)
	torrent, torrentURL := rtcMakeTorrent(t, progs.seedctl, s, file, []string{"--piece-size", "256KiB"},
		rtcWSAnnounce(s), s.site+"/announce")
	ti := readTorrent(t, torrent)

	// Each half beside zeros where the other half belongs: a full-length file whose check
	// finds half the pieces.
	withHalf := func(dir string, first bool) string {
		b := make([]byte, size)
		if first {
			copy(b[:half], data[:half])
		} else {
			copy(b[half:], data[half:])
		}
		p := filepath.Join(dir, "mixed.bin")
		wsWriteFile(t, p, b)
		return p
	}
	scOut, ltOut := t.TempDir(), t.TempDir()
	scFile, ltFile := withHalf(scOut, true), withHalf(ltOut, false)

	// seedctl get: TCP on 127.0.0.1, WebRTC on every address (10.77.0.1 for Chromium).
	getter := spStartSeedctl(t, t.TempDir(), "127.0.0.1", "get", torrent, "--out", scOut,
		"--webrtc", "on", "--min-peers", "0")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- seedctl get:\n%s", testenv.Tail([]byte(getter.Output()), 6000))
		}
	})
	testenv.WaitFor(t, time.Minute, "seedctl to check its half", func() error {
		if done, err := getter.Exited(); done {
			t.Fatalf("seedctl get exited (%v):\n%s", err, testenv.Tail([]byte(getter.Output()), 4000))
		}
		if st, ok := spLastStatus(getter); !ok || st.State != "downloading" || st.Percent < 49 || st.Percent > 51 {
			return fmt.Errorf("last status %+v", st)
		}
		return nil
	})

	// libtorrent on 127.0.0.2, through the http announce (it has no WebRTC); it stays in the
	// swarm once complete, until the tracker's view is checked.
	port := testenv.FreePort(t, "127.0.0.2")
	lt := testenv.Start(t, systemPython, append(libtorrentArgs(t, "get", torrent, ltOut, "127.0.0.2", port, 4*time.Minute),
		"--seed-after", "240")...)

	// The browser, over WebRTC from seedctl alone; it stays in the swarm, seeding, until
	// release exists.
	release := filepath.Join(t.TempDir(), "release")
	var page rtcPageResult
	drv := startRTCDriver(t, progs.node, progs.modules, progs.chromium, s, "get", torrentURL, release)
	waitRTCResult(t, drv, "RESULT", &page)
	t.Logf("page: %+v", page)
	checkRTCPage(t, page, sum, size)

	// libtorrent: complete means every piece checked by libtorrent; its file is the file.
	testenv.WaitFor(t, 2*time.Minute, "libtorrent to complete", func() error {
		if done, err := lt.Exited(); done {
			t.Fatalf("libtorrent exited (%v) before completing:\n%s", err, testenv.Tail([]byte(lt.Output()), 4000))
		}
		if !strings.Contains(lt.Output(), "RESULT complete") {
			return fmt.Errorf("not complete")
		}
		return nil
	})
	sameBytes(t, "libtorrent", ltFile, data)

	// seedctl: complete and verified, and it got its second half from libtorrent.
	st := spWaitState(t, getter, "seeding", time.Minute)
	sameBytes(t, "seedctl get", scFile, data)
	if st.Downloaded < size-half {
		t.Errorf("seedctl downloaded %d bytes; want the %d of the half it lacked", st.Downloaded, size-half)
	}

	// One swarm on the tracker: the browser (webtorrent) and seedctl's ws announce, seedctl's
	// and libtorrent's HTTP announces, every one a seeder now.
	var stats struct {
		Torrents int            `json:"torrents"`
		Seeders  int            `json:"seeders"`
		Leechers int            `json:"leechers"`
		Peers    map[string]int `json:"peers"`
		Clients  map[string]int `json:"clients"`
		Rows     []struct {
			InfoHash string `json:"info_hash"`
			Complete int    `json:"complete"`
		} `json:"rows"`
	}
	ih := hex.EncodeToString(ti.InfoHash[:])
	var body []byte
	err := testenv.Poll(time.Minute, func() error {
		var err error
		if body, err = httpGet(s.site + "/tracker/stats.json?rows=1"); err != nil {
			return err
		}
		if err := json.Unmarshal(body, &stats); err != nil {
			return err
		}
		if stats.Torrents != 1 || len(stats.Rows) != 1 || stats.Rows[0].InfoHash != ih ||
			stats.Peers["webtorrent"] != 2 || stats.Peers["ipv4"] != 2 ||
			stats.Clients["libtorrent"] != 1 || stats.Seeders != 4 || stats.Leechers != 0 || stats.Rows[0].Complete != 4 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err != nil {
		t.Errorf("the tracker does not count the browser, libtorrent and seedctl as four seeders of one swarm: %s", body)
	}
	writeFile(t, release, "")
	select {
	case <-drv.Done():
	case <-time.After(time.Minute):
		t.Error("the browser driver did not end after release")
	}

	// libtorrent's own figures: it downloaded the half it lacked (from seedctl, its only peer).
	lt.Stop(10 * time.Second)
	m := regexp.MustCompile(`RESULT end .* downloaded=(\d+)`).FindStringSubmatch(lt.Output())
	if m == nil {
		t.Fatalf("libtorrent printed no end line:\n%s", testenv.Tail([]byte(lt.Output()), 4000))
	}
	if n, _ := strconv.ParseInt(m[1], 10, 64); n < half {
		t.Errorf("libtorrent downloaded %d bytes; want the %d of the half it lacked", n, half)
	}
}

// sameBytes fails the test unless the file at path holds want.
func sameBytes(t *testing.T, who, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %s has %d bytes that are not the file's %d", who, path, len(got), len(want))
	}
}

// TestWebRTCSeederRestart: a page downloads a file from `seedctl seed` alone (only the ws://
// tracker, no web seed), the seeder held to 1 MiB/s so that the transfer lasts; once the page
// has 10 to 60 % of it, seedctl is killed with SIGKILL and started again on the same data and
// state. The page must find the new seeder (a new peer ID, new offers through the tracker)
// and finish: SHA-1 checked in the page, and the restarted seeder sent it bytes.
func TestWebRTCSeederRestart(t *testing.T) {
	progs := requireRTCPrograms(t)
	if inNetns(t) {
		return
	}
	s := startRTCSite(t, progs.nginx, progs.modules)

	const size = 16 << 20
	file, _, sum := rtcPayload(t, "restart.bin", size)
	src := filepath.Dir(file)
	torrent, torrentURL := rtcMakeTorrent(t, progs.seedctl, s, file, nil, rtcWSAnnounce(s))

	state := t.TempDir()
	seed := func() (*testenv.Proc, spStatus) {
		p := spStartSeedctl(t, state, "127.0.0.1", "seed", torrent, "--data", src, "--webrtc", "on",
			"--min-peers", "0", "--max-upload-rate", "1024")
		return p, spWaitState(t, p, "seeding", time.Minute)
	}
	first, _ := seed()

	drv := startRTCDriver(t, progs.node, progs.modules, progs.chromium, s, "get", torrentURL)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- driver:\n%s", testenv.Tail([]byte(drv.Output()), 6000))
		}
	})
	progress := regexp.MustCompile(`console: progress (\S+)`)
	var at float64
	testenv.WaitFor(t, 2*time.Minute, "the page to be part-way", func() error {
		if done, err := drv.Exited(); done {
			t.Fatalf("browser driver ended (%v):\n%s", err, testenv.Tail([]byte(drv.Output()), 4000))
		}
		all := progress.FindAllStringSubmatch(drv.Output(), -1)
		if len(all) == 0 {
			return fmt.Errorf("no progress yet")
		}
		at, _ = strconv.ParseFloat(all[len(all)-1][1], 64)
		if at < 0.1 || at >= 0.6 {
			return fmt.Errorf("progress %v", at)
		}
		return nil
	})
	first.Kill()
	killed := time.Now()
	t.Logf("seedctl killed at page progress %.1f%%", 100*at)

	second, start := seed()
	var page rtcPageResult
	waitRTCResult(t, drv, "RESULT", &page)
	t.Logf("page: %+v, done %v after the kill\n%s", page, time.Since(killed).Round(time.Second),
		regexp.MustCompile(`.*console: progress.*\n`).ReplaceAllString(drv.Output(), ""))
	checkRTCPage(t, page, sum, size)
	// The restarted seeder's total starts from what its resume record kept; it grew.
	testenv.WaitFor(t, 30*time.Second, "the restarted seedctl to count its upload", func() error {
		if st, _ := spLastStatus(second); st.Uploaded <= start.Uploaded {
			return fmt.Errorf("uploaded %d, %d at its start", st.Uploaded, start.Uploaded)
		}
		return nil
	})
}
