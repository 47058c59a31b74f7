package e2e

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestAgentSeedsBrowser: `seedctl agent`, seeding the directory `seedctl publish` wrote into,
// serves Chromium over WebRTC: the page's torrent lists our tracker's ws:// URL behind nginx,
// the agent announces there (--webrtc auto) and the browser takes most of the file from it
// while the web seed is held to 8 KiB/s a connection. The agent's metrics count the bytes as
// webrtc. Inside a private network namespace, as TestBrowserSwarm (Chromium and the agent's
// WebRTC on 10.77.0.1, everything else on loopback).
func TestAgentSeedsBrowser(t *testing.T) {
	modules := browserModules(t)
	chromium := testenv.Require(t, "chromium", "chromium")
	node := testenv.Require(t, "node", "nodejs")
	nginx := testenv.Require(t, "nginx", "nginx")
	seedctl := testenv.Build(t, "./seedctl")
	testenv.Build(t, "./tracker")
	if inNetns(t) {
		return
	}

	tp := startTracker(t)
	dir := webDir(t)
	htdocs := filepath.Join(dir, "htdocs")
	port := testenv.FreePort(t, "127.0.0.1")
	root := testenv.RepoRoot(t)
	tmpl, err := template.ParseFiles(filepath.Join(root, "e2e", "testdata", "browser-swarm-nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	u, g := webUser(t)
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, map[string]any{"Dir": dir, "Port": port, "Conf": filepath.Join(root, "nginx-conf"),
		"User": u, "Group": g, "Tracker": fmt.Sprintf("127.0.0.1:%d", tp.Port), "Rate": "8k"}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	writeFile(t, confPath, conf.String())
	front := testenv.StartCmd(t, exec.Command(nginx, "-p", dir+"/", "-c", confPath, "-g", "daemon off;"))
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitFor(t, 10*time.Second, "nginx to proxy the tracker", func() error {
		if done, err := front.Exited(); done {
			t.Fatalf("nginx exited (%v):\n%s", err, front.Output())
		}
		_, err := httpGet(site + "/tracker/stats.json")
		return err
	})

	data := wsdRandom(1 << 20)
	sum := sha1.Sum(data)
	pub := filepath.Join(htdocs, "pub")
	file := filepath.Join(pub, "agent.bin")
	wsWriteFile(t, file, data)
	bundle, err := os.ReadFile(filepath.Join(modules, "webtorrent", "dist", "webtorrent.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	wsWriteFile(t, filepath.Join(htdocs, "webtorrent", "webtorrent.min.js"), bundle)
	r := scRunProgram(t, "", 2*time.Minute, seedctl, "publish", file, "--site", site, "--docroot", htdocs, "--page", "--no-agent")
	if r.Code != 0 || strings.Contains(r.Stderr, "warning") {
		t.Fatalf("publish: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, f := range []string{file + ".html", file + ".torrent"} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	state := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
	testenv.Start(t, seedctl, "agent", "--dir", pub, "--state", state, "--bind", "127.0.0.1",
		"--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")), "--webrtc-bind", "10.77.0.1",
		"--metrics", metricsAddr, "--log-level", "debug")
	agWaitStates(t, state, map[string]string{"agent.bin": "seeding"})

	work := t.TempDir()
	release := filepath.Join(work, "release")
	pidFile := filepath.Join(work, "chromium.pid")
	t.Cleanup(func() { stopGroupFromPIDFile(t, pidFile) })
	const timeout = 3 * time.Minute
	cmd := exec.Command(node, filepath.Join(root, "e2e", "testdata", "browser", "swarm.mjs"),
		modules, chromium, site+"/pub/agent.bin.html", filepath.Join(work, "profile"), pidFile,
		strconv.Itoa(int(timeout/time.Millisecond)), "1", release)
	cmd.Env = append(os.Environ(), "HOME="+work)
	drv := testenv.StartCmd(t, cmd)
	var pages []swarmPageResult
	testenv.WaitFor(t, timeout+30*time.Second, "the page to finish", func() error {
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
	t.Logf("pages: %+v", pages)
	if len(pages) != 1 || pages[0].SHA1 != hex.EncodeToString(sum[:]) {
		t.Fatalf("page result %+v: want the file's SHA-1 %x", pages, sum)
	}
	if pages[0].FromPeers == 0 {
		t.Errorf("the browser got nothing from the agent over WebRTC\n%s", testenv.Tail([]byte(drv.Output()), 8000))
	}
	// The agent counts what it sent the browser as webrtc.
	sent := regexp.MustCompile(`(?m)^webswarm_seed_transport_uploaded_bytes_total\{transport="webrtc"\} (\S+)$`)
	testenv.WaitFor(t, 30*time.Second, "the agent's webrtc upload in /metrics", func() error {
		body, err := httpGet("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		m := sent.FindSubmatch(body)
		if m == nil {
			return fmt.Errorf("no webrtc upload series")
		}
		if n, _ := strconv.ParseFloat(string(m[1]), 64); n < float64(pages[0].FromPeers) {
			return fmt.Errorf("webrtc upload %s, the browser got %d from peers", m[1], pages[0].FromPeers)
		}
		return nil
	})
	writeFile(t, release, "")
	select {
	case <-drv.Done():
	case <-time.After(time.Minute):
		t.Error("the browser driver did not end after release")
	}
}
