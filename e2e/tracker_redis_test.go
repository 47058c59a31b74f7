package e2e

import (
	"context"
	"crypto/sha1"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestTrackerRedisTwoInstances: two tracker processes on one real redis-server share their
// swarms: a peer that announced at one is handed out by the other, and scrapes at either
// count both peers and a completion made through the other.
func TestTrackerRedisTwoInstances(t *testing.T) {
	store := "redis://" + testenv.StartRedis(t)
	a := startTracker(t, "--store", store, "--store_prefix", "e2e:")
	b := startTracker(t, "--store", store, "--store_prefix", "e2e:")
	ih := sha1.Sum([]byte("redis two instances"))

	if _, err := announce(a.Announce, announceQuery(ih, "-TEST00-aaaaaaaaaaaa", 7001, 100, "event=started", "compact=1", "key=k1")); err != nil {
		t.Fatal(err)
	}
	r, err := announce(b.Announce, announceQuery(ih, "-TEST00-bbbbbbbbbbbb", 7002, 100, "event=started", "compact=1", "key=k2"))
	if err != nil {
		t.Fatal(err)
	}
	peers, err := compactPeers(r.Peers)
	if err != nil {
		t.Fatal(err)
	}
	if r.Incomplete != 2 || !slices.Equal(peers, []string{"127.0.0.1:7001"}) {
		t.Fatalf("instance B: %d leechers, peers %v; want 2 and the peer announced at A", r.Incomplete, peers)
	}
	// The first peer completes through B (same key): counted once, visible at A.
	for range 2 {
		if _, err := announce(b.Announce, announceQuery(ih, "-TEST00-aaaaaaaaaaaa", 7001, 0, "event=completed", "key=k1")); err != nil {
			t.Fatal(err)
		}
	}
	st, err := scrape(scrapeURLOf(t, a.Announce), ih)
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete != 1 || st.Incomplete != 1 || st.Downloaded != 1 {
		t.Fatalf("scrape at A: %+v, want 1 seeder, 1 leecher, 1 completion", st)
	}
	// The key learnt through A guards the peer at B: from another address, another key
	// cannot stop it.
	if _, err := announce(b.Announce, announceQuery(ih, "-TEST00-aaaaaaaaaaaa", 7009, 0, "event=stopped", "key=zz")); err == nil ||
		!strings.Contains(err.Error(), "peer_id is in use") {
		t.Errorf("stop with another key from another port: %v, want peer_id in use", err)
	}
	if st, err := scrape(scrapeURLOf(t, b.Announce), ih); err != nil || st.Complete != 1 {
		t.Fatalf("after a refused stop: %+v %v, want the seeder kept", st, err)
	}
	// Every announce is one script call, timed: B made at least four (two started, two
	// completed, the refused stop).
	if n := metricValue(t, b, `webswarm_tracker_store_call_duration_seconds_count{call="script"}`); n < 4 {
		t.Errorf("store_call_duration_seconds_count{call=script} at B: %v, want ≥ 4", n)
	}
}

// TestTrackerRedisBadURL: a malformed --store stops start-up with a message naming the flag.
func TestTrackerRedisBadURL(t *testing.T) {
	bin := testenv.Build(t, "./tracker")
	for _, u := range []string{"redis://127.0.0.1:6379/notadb", "mongodb://127.0.0.1", "redis-cluster://127.0.0.1:7000,nohost"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		port := testenv.FreePort(t, "127.0.0.1")
		out, err := exec.CommandContext(ctx, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--store", u).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "--store") {
			t.Errorf("--store %s: err %v, output %q; want a failed start naming --store", u, err, testenv.Tail(out, 500))
		}
	}
}

// TestTrackerRedisDown: a tracker whose Redis is not there starts all the same; announces get
// a failure reason at once (no hang), the store metrics say so, and once Redis is up
// announces work without a restart.
func TestTrackerRedisDown(t *testing.T) {
	port := testenv.FreePort(t, "127.0.0.1") // nothing listens here yet
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// Not /healthz 200: a tracker without its store answers 503, saying why.
	tr := startTrackerHealth(t, http.StatusServiceUnavailable, "unavailable", "--store", "redis://"+addr, "--store_timeout_ms", "200")
	ih := sha1.Sum([]byte("redis down"))
	q := announceQuery(ih, "-TEST00-cccccccccccc", 7003, 100, "event=started")
	body, err := trackerGet(tr.Announce + "?" + q)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		FailureReason string `bencode:"failure reason"`
		RetryIn       int64  `bencode:"retry in"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil || r.FailureReason == "" || r.RetryIn < 1 {
		t.Fatalf("announce with Redis down: %q (%v); want a failure reason and BEP 31 retry in", body, err)
	}
	if v := metricValue(t, tr, "webswarm_tracker_store_up"); v != 0 {
		t.Errorf("webswarm_tracker_store_up %v with Redis down, want 0", v)
	}
	conn := metricValue(t, tr, `webswarm_tracker_store_errors_total{kind="connection",op="announce"}`)
	tmo := metricValue(t, tr, `webswarm_tracker_store_errors_total{kind="timeout",op="announce"}`)
	if conn+tmo < 1 {
		t.Errorf("store_errors_total{op=announce,kind=connection|timeout} %v + %v, want ≥ 1", conn, tmo)
	}
	bin := testenv.Require(t, "redis-server", "redis-server")
	testenv.Start(t, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--daemonize", "no", "--dir", t.TempDir())
	testenv.WaitFor(t, 10*time.Second, "redis-server answering PING", func() error { return testenv.RedisPing(addr) })
	testenv.WaitFor(t, 10*time.Second, "an announce succeeding once Redis is up", func() error {
		_, err := announce(tr.Announce, q)
		return err
	})
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(tr.Base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz %d after Redis came back, want 200", resp.StatusCode)
	}
	if v := metricValue(t, tr, "webswarm_tracker_store_up"); v != 1 {
		t.Errorf("webswarm_tracker_store_up %v after Redis came back, want 1", v)
	}
}
