package e2e

// Browsers in one swarm with each other and with a desktop client, through our tracker behind
// a real nginx: WebRTC between two Chromium contexts, introduced by the WebSocket tracker,
// and the swarm counted as one on the tracker's stats and scrape.
//
// Chromium gathers no ICE candidate on lo, and on the host it would use the machine's outside
// interface (no test may): so the test runs itself again inside a private network namespace
// (unshare -n) where lo is up and a veth pair gives Chromium 10.77.0.1, an address that exists
// only there. Everything the test starts runs in the namespace; the programs are built and
// the npm packages installed (scripts/test.sh) before it enters.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// netnsEnv marks the test binary run inside the namespace.
const netnsEnv = "WEBSWARM_E2E_NETNS"

// netnsSetup brings up lo and the veth pair that carries WebRTC (Chromium gathers no ICE
// candidate on loopback alone); then it runs the test binary ("$0" and its arguments).
const netnsSetup = `set -e
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.77.0.1/24 dev v0
ip link set v0 up
ip link set v1 up
ip route add default dev v0
exec "$@"`

// inNetns runs the calling test (by name) again inside a private network namespace and
// reports its outcome. It returns false inside the namespace, where the test goes on.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		return false
	}
	unshare := testenv.Require(t, "unshare", "util-linux")
	testenv.Require(t, "ip", "iproute2")
	if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("unshare -n is not permitted here (%v: %s): WebRTC tests need a private network namespace", err, bytes.TrimSpace(out)))
	}
	const timeout = 8 * time.Minute // a bound, not a goal
	args := []string{"-n", "--", "sh", "-c", netnsSetup, "sh", os.Args[0],
		"-test.run=^" + t.Name() + "$", "-test.v", "-test.count=1", "-test.timeout=" + timeout.String()}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	p := testenv.StartCmd(t, cmd)
	select {
	case <-p.Done():
	case <-time.After(timeout + 30*time.Second):
		t.Fatalf("the test in the namespace still runs after %v:\n%s", timeout+30*time.Second, testenv.Tail([]byte(p.Output()), 8000))
	}
	out := p.Output()
	if _, err := p.Exited(); err != nil {
		t.Fatalf("in the network namespace: %v\n%s", err, testenv.Tail([]byte(out), 16000))
	}
	t.Logf("in the network namespace:\n%s", testenv.Tail([]byte(out), 8000))
	if !strings.Contains(out, "--- PASS: "+t.Name()) {
		t.Skipf("the test did not pass in the namespace (skipped there; see the log)")
	}
	return true
}

// swarmPageResult is one page's figures as swarm.mjs reads them.
type swarmPageResult struct {
	SHA1        string `json:"sha1"`
	FromWebSeed int64  `json:"fromWebSeed"`
	FromPeers   int64  `json:"fromPeers"`
	Status      string `json:"status"`
}

// TestBrowserSwarm: two browser contexts download the page's file through our tracker behind
// nginx over ws://, the web seed capped at 32 KiB/s a connection. The second starts once the
// first is done and seeds, and takes pieces from it over WebRTC (webtorrent reports bytes from
// peers); both pages' SHA-1s are the file's. (Started together, both fetch the same pieces
// from the web seed in the same order and have nothing to exchange: measured, at 16 KiB/s
// neither got a byte from the other.) A desktop client (libtorrent) seeds the same torrent
// over HTTP announces, and the tracker counts the three in one swarm: stats.json's row and
// totals, and the HTTP scrape through nginx.
func TestBrowserSwarm(t *testing.T) {
	modules := browserModules(t)
	chromium := testenv.Require(t, "chromium", "chromium")
	node := testenv.Require(t, "node", "nodejs")
	nginx := testenv.Require(t, "nginx", "nginx")
	requireLibtorrent(t)
	seedctl := testenv.Build(t, "./seedctl")
	testenv.Build(t, "./tracker")
	if inNetns(t) {
		return
	}

	site, htdocs := startSwarmSite(t, nginx, modules, "32k")

	data := wsdRandom(4 << 20)
	sum := sha1.Sum(data)
	file := filepath.Join(htdocs, "pub", "swarm.bin")
	wsWriteFile(t, file, data)
	publishPage(t, seedctl, file, site, htdocs)
	ti := readTorrent(t, file+".torrent")

	// The desktop client seeds over HTTP announces through nginx.
	startLibtorrentSeed(t, file+".torrent", filepath.Dir(file), "127.0.0.1")
	testenv.WaitFor(t, time.Minute, "libtorrent's announce", func() error {
		s, err := scrape(site+"/scrape", ti.InfoHash)
		if err != nil || s.Complete < 1 {
			return fmt.Errorf("scrape %+v, %v", s, err)
		}
		return nil
	})

	// The browsers.
	pages, drv, release := runSwarmPages(t, node, chromium, modules, site+"/pub/swarm.bin.html", 2, 4*time.Minute, "both pages to finish")
	checkSwarmPages(t, pages, sum, drv)

	// One swarm: libtorrent and both browsers (seeders now) on the stats page and in the
	// HTTP scrape; the browsers' completions counted.
	var stats struct {
		Torrents int            `json:"torrents"`
		Seeders  int            `json:"seeders"`
		Leechers int            `json:"leechers"`
		Peers    map[string]int `json:"peers"`
		Rows     []struct {
			InfoHash   string `json:"info_hash"`
			Complete   int    `json:"complete"`
			Downloaded int    `json:"downloaded"`
		} `json:"rows"`
	}
	ih := hex.EncodeToString(ti.InfoHash[:])
	err := testenv.Poll(time.Minute, func() error {
		body, err := httpGet(site + "/tracker/stats.json?rows=1")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &stats); err != nil {
			return err
		}
		if stats.Torrents != 1 || stats.Seeders != 3 || stats.Peers["webtorrent"] != 2 || len(stats.Rows) != 1 ||
			stats.Rows[0].InfoHash != ih || stats.Rows[0].Complete != 3 || stats.Rows[0].Downloaded < 2 {
			return fmt.Errorf("stats.json: %s", body)
		}
		s, err := scrape(site+"/scrape", ti.InfoHash)
		if err != nil || s.Complete != 3 || s.Downloaded < 2 {
			return fmt.Errorf("scrape %+v, %v", s, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("the tracker does not count the desktop client and the browsers in one swarm: %v", err)
	}
	release()
}

// checkSwarmPages checks the two pages' results: both SHA-1s are sum, and the second page
// took bytes from the first over WebRTC (drv's output is shown otherwise).
func checkSwarmPages(t *testing.T, pages []swarmPageResult, sum [sha1.Size]byte, drv *testenv.Proc) {
	t.Helper()
	t.Logf("pages: %+v", pages)
	want := hex.EncodeToString(sum[:])
	for i, p := range pages {
		if p.SHA1 != want {
			t.Errorf("page %d: SHA-1 %q, the file's %s (status %q)", i, p.SHA1, want, p.Status)
		}
	}
	if len(pages) != 2 || pages[1].FromPeers == 0 {
		t.Errorf("the second browser got no bytes from the first: no pieces exchanged over WebRTC\n%s", testenv.Tail([]byte(drv.Output()), 8000))
	}
}

// startSwarmSite starts the tracker and, in front of it, nginx with the browser tests'
// configuration (the shipped proxy snippet carries the WebSocket upgrade; the web seed under
// /pub capped at rate a connection, "0" for none), and puts the webtorrent bundle under htdocs.
// Given tracker instances (two, sharing a store), it starts none: nginx balances over them
// with the several-instances upstream of nginx-conf/webswarm-upstreams.conf.
// It returns the site's URL and its document root.
func startSwarmSite(t *testing.T, nginx, modules, rate string, instances ...*trackerProc) (site, htdocs string) {
	t.Helper()
	upstream := ""
	if len(instances) == 0 {
		instances = []*trackerProc{startTracker(t)}
	} else {
		addrs := make([]string, len(instances))
		for i, tp := range instances {
			addrs[i] = httpAddr(tp)
		}
		upstream = documentedUpstream(t, addrs)
	}
	dir := webDir(t)
	htdocs = filepath.Join(dir, "htdocs")
	port := testenv.FreePort(t, "127.0.0.1")
	root := testenv.RepoRoot(t)
	tmpl, err := template.ParseFiles(filepath.Join(root, "e2e", "testdata", "browser-swarm-nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	u, g := webUser(t)
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, map[string]any{"Dir": dir, "Port": port, "Conf": filepath.Join(root, "nginx-conf"),
		"User": u, "Group": g, "Tracker": httpAddr(instances[0]), "Upstream": upstream, "Rate": rate}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	writeFile(t, confPath, conf.String())
	front := testenv.StartCmd(t, exec.Command(nginx, "-p", dir+"/", "-c", confPath, "-g", "daemon off;"))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx error.log:\n%s", testenv.Tail(b, 4000))
			for i, tp := range instances {
				t.Logf("--- tracker %d:\n%s", i+1, testenv.Tail([]byte(tp.Proc.Output()), 4000))
			}
		}
	})
	site = fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitFor(t, 10*time.Second, "nginx to proxy the tracker", func() error {
		if done, err := front.Exited(); done {
			t.Fatalf("nginx exited (%v):\n%s", err, front.Output())
		}
		_, err := httpGet(site + "/tracker/stats.json")
		return err
	})
	bundle, err := os.ReadFile(filepath.Join(modules, "webtorrent", "dist", "webtorrent.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	wsWriteFile(t, filepath.Join(htdocs, "webtorrent", "webtorrent.min.js"), bundle)
	return site, htdocs
}

// publishPage runs seedctl publish --page on file (under htdocs) and makes the page and the
// .torrent readable by nginx's worker.
func publishPage(t *testing.T, seedctl, file, site, htdocs string) {
	t.Helper()
	r := scRunProgram(t, "", 2*time.Minute, seedctl, "publish", file, "--site", site, "--docroot", htdocs, "--page", "--no-agent")
	if r.Code != 0 || strings.Contains(r.Stderr, "warning") {
		t.Fatalf("publish: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, f := range []string{file + ".html", file + ".torrent"} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runSwarmPages opens pageURL in n Chromium pages through swarm.mjs (each started once the one
// before has finished) and waits, up to timeout, for their results. The pages keep seeding
// until release is called, which also waits for the driver to end; the test's cleanup stops
// Chromium by PID in any case.
func runSwarmPages(t *testing.T, node, chromium, modules, pageURL string, n int, timeout time.Duration, what string) (pages []swarmPageResult, drv *testenv.Proc, release func()) {
	t.Helper()
	work := t.TempDir()
	releaseFile := filepath.Join(work, "release")
	pidFile := filepath.Join(work, "chromium.pid")
	t.Cleanup(func() { stopGroupFromPIDFile(t, pidFile) })
	cmd := exec.Command(node, filepath.Join(testenv.RepoRoot(t), "e2e", "testdata", "browser", "swarm.mjs"),
		modules, chromium, pageURL, filepath.Join(work, "profile"), pidFile,
		strconv.Itoa(int(timeout/time.Millisecond)), strconv.Itoa(n), releaseFile)
	cmd.Env = append(os.Environ(), "HOME="+work)
	drv = testenv.StartCmd(t, cmd)
	testenv.WaitFor(t, timeout+30*time.Second, what, func() error {
		out := drv.Output()
		if done, err := drv.Exited(); done {
			t.Fatalf("browser driver ended (%v):\n%s", err, testenv.Tail([]byte(out), 8000))
		}
		for _, l := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(l, "RESULT "); ok {
				if err := json.Unmarshal([]byte(s), &pages); err != nil {
					t.Fatalf("%v: %s", err, s)
				}
				return nil
			}
		}
		return fmt.Errorf("no RESULT yet")
	})
	release = func() {
		writeFile(t, releaseFile, "")
		select {
		case <-drv.Done():
		case <-time.After(time.Minute):
			t.Error("the browser driver did not end after release")
		}
	}
	return pages, drv, release
}

// httpGet returns a 200 answer's body.
func httpGet(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, err
}
