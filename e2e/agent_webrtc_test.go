package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
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

	site, htdocs := startSwarmSite(t, nginx, modules, "8k")

	data := wsdRandom(1 << 20)
	sum := sha1.Sum(data)
	pub := filepath.Join(htdocs, "pub")
	file := filepath.Join(pub, "agent.bin")
	wsWriteFile(t, file, data)
	publishPage(t, seedctl, file, site, htdocs)

	state := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
	testenv.Start(t, seedctl, "agent", "--dir", pub, "--state", state, "--bind", "127.0.0.1",
		"--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")), "--webrtc-bind", "10.77.0.1",
		"--metrics", metricsAddr, "--log-level", "debug")
	agWaitStates(t, state, map[string]string{"agent.bin": "seeding"})

	pages, drv, release := runSwarmPages(t, node, chromium, modules, site+"/pub/agent.bin.html", 1, 3*time.Minute, "the page to finish")
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
	release()
}
