package e2e

// Browsers whose WebSockets are held by two different tracker instances meet: the instances
// share one real redis-server and relay offers and answers through it (tracker/wsrelay), and
// one real nginx balances over both with the several-instances upstream documented in
// nginx-conf/webswarm-upstreams.conf. The test runs itself again inside a private network
// namespace (inNetns, as browser_swarm_test.go does) for WebRTC's ICE candidates.

import (
	"crypto/sha1"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestBrowsersAcrossTrackerInstances: two Chromium pages download the page's file, the
// second once the first is done and seeds, with the web seed capped at 32 KiB/s a
// connection. nginx's round robin hands the pages' two WebSocket upgrades, one after the
// other, to different instances: each instance holds exactly one connection (its
// webswarm_tracker_ws_connections), so no instance can introduce the pages to each other on
// its own. The second page still takes bytes from the first over WebRTC (webtorrent's bytes
// from peers), both pages' SHA-1s are the file's, and the instances' relay counters show the
// offer and its answer crossing Redis.
func TestBrowsersAcrossTrackerInstances(t *testing.T) {
	modules := browserModules(t)
	chromium := testenv.Require(t, "chromium", "chromium")
	node := testenv.Require(t, "node", "nodejs")
	nginx := testenv.Require(t, "nginx", "nginx")
	testenv.Require(t, "redis-server", "redis-server")
	seedctl := testenv.Build(t, "./seedctl")
	testenv.Build(t, "./tracker")
	if inNetns(t) {
		return
	}

	store := "redis://" + testenv.StartRedis(t)
	instances := []*trackerProc{
		startTracker(t, "--store", store, "--store_prefix", "browsers:"),
		startTracker(t, "--store", store, "--store_prefix", "browsers:"),
	}
	site, htdocs := startSwarmSite(t, nginx, modules, "32k", instances...)

	data := wsdRandom(2 << 20)
	sum := sha1.Sum(data)
	file := filepath.Join(htdocs, "pub", "relay.bin")
	wsWriteFile(t, file, data)
	publishPage(t, seedctl, file, site, htdocs)

	pages, drv, release := runSwarmPages(t, node, chromium, modules, site+"/pub/relay.bin.html", 2, 4*time.Minute, "both pages to finish")
	defer release()
	checkSwarmPages(t, pages, sum, drv)

	// Where the pages are: one WebSocket on each instance (the pages still seed).
	for i, tp := range instances {
		if v := metricValue(t, tp, "webswarm_tracker_ws_connections"); v != 1 {
			t.Errorf("instance %d holds %v WebSocket connections, want 1 (one page each)", i+1, v)
		}
	}
	// How they met: offers went out of one instance and came in at the other, and answers
	// came back the same way.
	relayed := func(tp *trackerProc, dir, kind string) float64 {
		return metricValue(t, tp, fmt.Sprintf(`webswarm_tracker_ws_relay_messages_total{direction=%q,kind=%q}`, dir, kind))
	}
	var offersOut, offersIn, answersOut, answersIn float64
	for i, tp := range instances {
		oo, oi, ao, ai := relayed(tp, "out", "offer"), relayed(tp, "in", "offer"), relayed(tp, "out", "answer"), relayed(tp, "in", "answer")
		t.Logf("instance %d relayed offers out %v, in %v; answers out %v, in %v", i+1, oo, oi, ao, ai)
		offersOut, offersIn, answersOut, answersIn = offersOut+oo, offersIn+oi, answersOut+ao, answersIn+ai
		// Offers handed to a peer here: those from the other instance, and any from a peer
		// here, which would mean both pages were on this instance.
		if handed := metricValue(t, tp, "webswarm_tracker_ws_offers_relayed_total"); handed > oi {
			t.Errorf("instance %d handed %v offers to its peers, only %v came from the other instance", i+1, handed, oi)
		}
	}
	if offersOut < 1 || offersIn < 1 || answersOut < 1 || answersIn < 1 {
		t.Errorf("relay through Redis: offers out %v, in %v; answers out %v, in %v; want each ≥ 1", offersOut, offersIn, answersOut, answersIn)
	}
}
