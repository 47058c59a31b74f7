package e2e

// seedctl and a real browser in one swarm over WebRTC (issue 15, "Proven in a real browser"):
// Chromium runs webtorrent's bundle, our tracker sits behind a real nginx that passes the
// WebSocket upgrade with the shipped proxy snippet, and the torrent has no web seed and lists
// only the ws:// tracker, so every byte the page gets comes over a data channel from seedctl.
// The test runs itself again inside a private network namespace (inNetns, as
// browser_swarm_test.go does): lo plus a veth address for the ICE candidates.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// rtcPageResult is what rtc.mjs reads off the page once the download is done.
type rtcPageResult struct {
	SHA1        string `json:"sha1"`
	Length      int64  `json:"length"`
	FromPeers   int64  `json:"fromPeers"`
	FromWebSeed int64  `json:"fromWebSeed"`
	Peers       int    `json:"peers"`
}

// rtcSite is the test's web front: our tracker behind nginx, the htdocs the page is served
// from, and the site's base URL.
type rtcSite struct {
	htdocs string
	site   string
}

// startRTCSite starts the tracker and nginx in front of it with the browser swarm's
// configuration (the shipped proxy snippet carries the WebSocket upgrade), and puts the
// webtorrent bundle and a blank page under htdocs.
func startRTCSite(t *testing.T, nginx, modules string) rtcSite {
	t.Helper()
	site, htdocs := startSwarmSite(t, nginx, modules, "0")
	wsWriteFile(t, filepath.Join(htdocs, "rtc.html"), []byte("<!doctype html><link rel=\"icon\" href=\"data:,\"><title>WebRTC peer</title><input type=file>\n"))
	return rtcSite{htdocs: htdocs, site: site}
}

// startRTCDriver starts rtc.mjs in mode against the site's blank page; args follow
// TIMEOUT_MS (see rtc.mjs). The test's cleanup stops Chromium by PID.
func startRTCDriver(t *testing.T, node, modules, chromium string, s rtcSite, mode string, args ...string) *testenv.Proc {
	t.Helper()
	work := t.TempDir()
	pidFile := filepath.Join(work, "chromium.pid")
	t.Cleanup(func() { stopGroupFromPIDFile(t, pidFile) })
	root := testenv.RepoRoot(t)
	full := append([]string{filepath.Join(root, "e2e", "testdata", "browser", "rtc.mjs"), mode,
		modules, chromium, s.site + "/rtc.html", filepath.Join(work, "profile"), pidFile,
		strconv.Itoa(int(rtcDriverTimeout / time.Millisecond))}, args...)
	cmd := exec.Command(node, full...)
	cmd.Env = append(os.Environ(), "HOME="+work)
	return testenv.StartCmd(t, cmd)
}

// rtcDriverTimeout bounds a driver's run: a bound, not a goal, as the machine may be busy.
const rtcDriverTimeout = 5 * time.Minute

// waitRTCResult waits for the driver's line starting with prefix (and a space) and decodes
// the JSON after it into out.
func waitRTCResult(t *testing.T, drv *testenv.Proc, prefix string, out any) {
	t.Helper()
	testenv.WaitFor(t, rtcDriverTimeout+30*time.Second, "the page's "+prefix, func() error {
		text := drv.Output()
		for _, l := range strings.Split(text, "\n") {
			if js, ok := strings.CutPrefix(l, prefix+" "); ok {
				if err := json.Unmarshal([]byte(js), out); err != nil {
					t.Fatalf("%v: %s", err, js)
				}
				return nil
			}
		}
		if done, err := drv.Exited(); done {
			t.Fatalf("browser driver ended (%v) without %s:\n%s", err, prefix, testenv.Tail([]byte(drv.Output()), 4000))
		}
		return fmt.Errorf("no %s yet", prefix)
	})
}

// TestWebRTCBrowserGetsFromSeedctl: `seedctl seed --webrtc on` is the only source of a torrent
// (no web seed, only the ws:// tracker), and a page in Chromium downloads it over WebRTC; the
// SHA-1 the page computes is the file's. Without seedctl's WebRTC side the page has no peer
// and never finishes.
func TestWebRTCBrowserGetsFromSeedctl(t *testing.T) {
	progs := requireRTCPrograms(t)
	if inNetns(t) {
		return
	}
	s := startRTCSite(t, progs.nginx, progs.modules)

	// 64 MiB, the size: about 15 s on a busy 2-core machine. The payload lives outside
	// htdocs: nginx cannot serve it, only its .torrent.
	const size = 64 << 20
	file, _, sum := rtcPayload(t, "rtc.bin", size)
	src := filepath.Dir(file)
	torrent, torrentURL := rtcMakeTorrent(t, progs.seedctl, s, file, nil, rtcWSAnnounce(s))

	seeder, _ := spStartSeedctlPort(t, t.TempDir(), "127.0.0.1", "seed", torrent, "--data", src, "--webrtc", "on", "--min-peers", "0")
	spWaitState(t, seeder, "seeding", 2*time.Minute)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- seedctl:\n%s", testenv.Tail([]byte(seeder.Output()), 6000))
		}
	})

	var got rtcPageResult
	drv := startRTCDriver(t, progs.node, progs.modules, progs.chromium, s, "get", torrentURL)
	waitRTCResult(t, drv, "RESULT", &got)
	t.Logf("driver:\n%s", testenv.Tail([]byte(drv.Output()), 4000))
	t.Logf("page: %+v", got)
	checkRTCPage(t, got, sum, size)
}

// rtcSeedResult is what rtc.mjs reports once the page seeds the file it was given.
type rtcSeedResult struct {
	InfoHash string `json:"infoHash"`
	Length   int64  `json:"length"`
}

// TestWebRTCSeedctlGetsFromBrowser: the other direction. A page in Chromium is given a file
// through its file input and seeds it with webtorrent, the ws:// tracker behind nginx its only
// tracker (the browser's .torrent has no web seed); `seedctl get --webrtc on` downloads it
// from the browser alone, and the bytes on disk are the file's. The page counts what it
// uploaded.
func TestWebRTCSeedctlGetsFromBrowser(t *testing.T) {
	progs := requireRTCPrograms(t)
	if inNetns(t) {
		return
	}
	s := startRTCSite(t, progs.nginx, progs.modules)

	const size = 64 << 20
	file, data, _ := rtcPayload(t, "from-browser.bin", size)
	work := t.TempDir()
	release := filepath.Join(work, "release")
	torrent := filepath.Join(work, "from-browser.bin.torrent")
	drv := startRTCDriver(t, progs.node, progs.modules, progs.chromium, s, "seed", file, rtcWSAnnounce(s), torrent, release)
	var made rtcSeedResult
	waitRTCResult(t, drv, "RESULT", &made)
	show := scShow(t, torrent)
	if show.InfoHash != made.InfoHash || show.TotalLength != size || len(show.WebSeeds) != 0 {
		t.Fatalf("the page's .torrent: %+v; the page says info-hash %s, %d bytes", show, made.InfoHash, made.Length)
	}

	out := t.TempDir()
	getter, _ := spStartSeedctlPort(t, t.TempDir(), "127.0.0.1", "get", torrent, "--out", out,
		"--webrtc", "on", "--exit-on-complete")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- driver:\n%s", testenv.Tail([]byte(drv.Output()), 4000))
		}
	})
	spWaitExit(t, getter, rtcDriverTimeout)
	got, err := os.ReadFile(filepath.Join(out, "from-browser.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("seedctl get wrote %d bytes that are not the browser's file (%d bytes)", len(got), len(data))
	}

	writeFile(t, release, "")
	var up struct {
		Uploaded int64 `json:"uploaded"`
		Peers    int   `json:"peers"`
	}
	waitRTCResult(t, drv, "RESULT2", &up)
	t.Logf("page: %+v\n%s", up, testenv.Tail([]byte(drv.Output()), 4000))
	if up.Uploaded < size {
		t.Errorf("the page uploaded %d bytes, not the whole %d: seedctl's bytes came from elsewhere", up.Uploaded, size)
	}
	select {
	case <-drv.Done():
	case <-time.After(time.Minute):
		t.Error("the browser driver did not end after release")
	}
}
