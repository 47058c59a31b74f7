package e2e

// The shipped monitoring (issue 7, "Metrics and dashboards") proven against a real Prometheus:
//
//   - TestMonitoringFilesCheck: promtool accepts monitoring/prometheus.yml and
//     monitoring/alert-rules.yml, the rules pass their unit tests (alert-rules.test.yml:
//     each alert fires on its condition and stays quiet short of it), and every dashboard is
//     well formed (datasource ${DS_PROMETHEUS}, a job, every variable known).
//   - TestMonitoringLivePrometheus: a real Prometheus scrapes a live tracker and a live
//     seeding agent (`seedctl agent`) through the shipped prometheus.yml (only targets and
//     intervals rewritten) while real clients (aria2 seeding and downloading through the
//     tracker, aria2 downloading from the agent alone, `seedctl get` taking a ws:// torrent
//     from the agent over WebRTC) and bad, rate-limited, UDP and scrape requests go through
//     the tracker. Then every dashboard panel's PromQL and every alert rule's expression must
//     return data through /api/v1/query, and the transport panels a webrtc series above 0.
//
// Alert rules are "condition over threshold", so on a healthy system most return nothing.
// The test therefore evaluates each rule's operands — the expression split at top-level
// and/or/unless, each part cut before its comparison — and requires data from each: that
// proves the metric names and labels the rule reads are real. What makes each alert fire
// is proven by the promtool unit tests on synthetic series. Some alerts are provoked for
// real as well: WebswarmTrackerStateLoadFailed (the tracker starts on a corrupt state
// file) must fire; WebswarmSeedTorrentInError (a .torrent whose payload is missing) and
// WebswarmSeedTorrentUnregistered (a torrent outside the tracker's --allowed_dir) must go
// pending (their `for:` is minutes); and every job's down alert (`up{job=...} == 0`) must go
// pending once its program is stopped.
//
// monJobs lists the programs this test can start. A job of prometheus.yml that has no
// starter is left out of the generated configuration, but a dashboard (by its "job"
// variable) or a rule group (by its name) for a job without a starter fails the test.

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/webswarm/webswarm/internal/testenv"
)

// monJob is a scrape job of monitoring/prometheus.yml and the program behind it. Its name
// is also the name of its rule group in alert-rules.yml and the value of the "job"
// variable of its dashboards.
type monJob struct {
	name string
	// start starts the program; started holds the programs of the jobs before it.
	start func(t *testing.T, started map[string]*monProgram) *monProgram
}

// monProgram is a program started for Prometheus to scrape.
type monProgram struct {
	target  string   // host:port Prometheus scrapes
	more    []string // more targets of the same job (the tracker's: one on a Redis store)
	traffic func()   // drives real traffic through it once Prometheus scrapes it
	stop    func()   // stops it, to prove the job's down alert
	firing  []string // alerts its set-up provokes on purpose; each must fire
	pending []string // alerts provoked on purpose whose `for:` is too long to wait: pending or firing
	// panels one of whose queries must return, beyond any data, a sample above 0 with a
	// given label value: what its traffic makes real (a WebRTC peer: transport="webrtc").
	panelSamples []monPanelSample

	// The tracker's: its announce URL, and allow, which registers a .torrent with it
	// (copied into its --allowed_dir, reloaded by SIGHUP) and returns once it is accepted.
	announce string
	allow    func(torrent string)
}

// monPanelSample asks a query of the panel titled panel (in its job's dashboards) for a
// sample above 0 whose label has the value value.
type monPanelSample struct{ panel, label, value string }

// monJobs are the jobs this test starts, in order.
var monJobs = []monJob{
	{name: "webswarm-tracker", start: monStartTracker},
	{name: "webswarm-seed", start: monStartSeed},
}

// monRateInterval stands for Grafana's $__rate_interval: long enough to hold the traffic,
// which happens within a minute before the queries.
const monRateInterval = "1m"

func TestMonitoringFilesCheck(t *testing.T) {
	promtool := testenv.Require(t, "promtool", "prometheus")
	dir := filepath.Join(testenv.RepoRoot(t), "monitoring")
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alert-rules.yml"},
		{"test", "rules", "alert-rules.test.yml"},
	} {
		out, err := monRun(dir, time.Minute, promtool, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	dashboards := monLoadDashboards(t)
	if len(dashboards) == 0 {
		t.Fatal("no dashboards in monitoring/dashboards")
	}
	uids := map[string]string{}
	for _, d := range dashboards {
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", d.file, other, d.UID)
		}
		uids[d.UID] = d.file
		if d.SchemaVersion < 36 {
			t.Errorf("%s: schemaVersion %d, want a current Grafana schema (>= 36)", d.file, d.SchemaVersion)
		}
		if len(d.queries) == 0 {
			t.Errorf("%s: no PromQL queries", d.file)
		}
		for _, q := range d.queries {
			if _, err := monExpand(q.expr, d.vars); err != nil {
				t.Errorf("%s: panel %q: %v", d.file, q.panel, err)
			}
		}
		for _, p := range d.problems {
			t.Errorf("%s: %s", d.file, p)
		}
	}

	// The rule groups are named after the scrape jobs, and every job has a down alert.
	groups := monLoadRuleGroups(t)
	jobs := monConfigJobs(t)
	for _, g := range groups {
		if !slices.Contains(jobs, g.Name) {
			t.Errorf("alert-rules.yml: group %q is not a job of prometheus.yml %v", g.Name, jobs)
		}
	}
	for _, job := range jobs {
		i := slices.IndexFunc(groups, func(g monRuleGroup) bool { return g.Name == job })
		if i < 0 {
			t.Errorf("alert-rules.yml: no group for job %s", job)
			continue
		}
		if monDownAlert(groups[i], job) == "" {
			t.Errorf("alert-rules.yml: group %s has no `up{job=%q} == 0` alert", job, job)
		}
	}
}

func TestMonitoringLivePrometheus(t *testing.T) {
	prom := testenv.Require(t, "prometheus", "prometheus")
	dashboards := monLoadDashboards(t)
	groups := monLoadRuleGroups(t)

	// Every dashboard and rule group belongs to a job this test starts.
	started := map[string]bool{}
	for _, j := range monJobs {
		started[j.name] = true
	}
	for _, d := range dashboards {
		if !started[d.vars["job"]] {
			t.Fatalf("%s is for job %q, which monJobs cannot start: add its starter", d.file, d.vars["job"])
		}
	}
	for _, g := range groups {
		if !started[g.Name] {
			t.Fatalf("alert-rules.yml: group %q is for a job monJobs cannot start: add its starter", g.Name)
		}
	}

	programs := map[string]*monProgram{}
	targets := map[string][]string{}
	for _, j := range monJobs {
		p := j.start(t, programs)
		programs[j.name] = p
		targets[j.name] = append([]string{p.target}, p.more...)
	}
	dir := t.TempDir()
	config := monWriteConfig(t, dir, targets)
	port := testenv.FreePort(t, "127.0.0.1")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	pp := testenv.Start(t, prom, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	testenv.WaitFor(t, 30*time.Second, "prometheus /-/ready", func() error {
		if done, err := pp.Exited(); done {
			t.Fatalf("prometheus exited (%v):\n%s", err, testenv.Tail([]byte(pp.Output()), 4000))
		}
		_, err := trackerGet(base + "/-/ready")
		return err
	})
	// The first scrape lands >= 5 s after start even at a 1 s interval (measured with Debian's Prometheus).
	for _, j := range monJobs {
		testenv.WaitFor(t, 30*time.Second, "job "+j.name+" scraped and up", func() error {
			return monWantData(base, fmt.Sprintf(`up{job=%q} == 1`, j.name))
		})
	}
	start := time.Now()
	for _, j := range monJobs {
		programs[j.name].traffic()
	}
	t.Logf("traffic driven in %v", time.Since(start).Round(time.Millisecond))

	// Every panel's query returns data. The rates cover the last minute, which holds the
	// traffic; Prometheus needs a scrape or two after it.
	var exprs []monExpr
	for _, d := range dashboards {
		for _, q := range d.queries {
			e, err := monExpand(q.expr, d.vars)
			if err != nil {
				t.Fatalf("%s: panel %q: %v", d.file, q.panel, err)
			}
			exprs = append(exprs, monExpr{what: fmt.Sprintf("%s panel %q", filepath.Base(d.file), q.panel), expr: e})
		}
		for _, v := range d.labelQueries {
			exprs = append(exprs, monExpr{what: fmt.Sprintf("%s variable %s", filepath.Base(d.file), v.name), expr: v.expr, label: v.label})
		}
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			for _, op := range monOperands(r.Expr) {
				exprs = append(exprs, monExpr{what: fmt.Sprintf("alert %s operand", r.Alert), expr: op})
			}
		}
	}
	var missing []string
	testenv.WaitFor(t, 45*time.Second, "every panel and alert expression to return data", func() error {
		missing = missing[:0]
		for _, e := range exprs {
			if err := monWantLabelData(base, e.expr, e.label); err != nil {
				missing = append(missing, fmt.Sprintf("%s: %s\n    %v", e.what, e.expr, err))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d without data:\n  %s", len(missing), len(exprs), strings.Join(missing, "\n  "))
		}
		return nil
	})
	t.Logf("%d dashboard and alert expressions returned data", len(exprs))

	// Panels whose series the traffic made real: a sample above 0 with the wanted label.
	for _, j := range monJobs {
		for _, want := range programs[j.name].panelSamples {
			var panel []string
			for _, d := range dashboards {
				for _, q := range d.queries {
					if d.vars["job"] != j.name || q.panel != want.panel {
						continue
					}
					e, err := monExpand(q.expr, d.vars)
					if err != nil {
						t.Fatal(err)
					}
					panel = append(panel, e)
				}
			}
			if len(panel) == 0 {
				t.Errorf("job %s: no dashboard panel %q", j.name, want.panel)
				continue
			}
			testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("panel %q: %s=%q above 0", want.panel, want.label, want.value), func() error {
				var errs []error
				for _, e := range panel {
					err := monWantSample(base, e, want.label, want.value)
					if err == nil {
						return nil
					}
					errs = append(errs, err)
				}
				return errors.Join(errs...)
			})
			t.Logf("panel %q: a sample with %s=%q above 0", want.panel, want.label, want.value)
		}
	}

	// Every rule evaluates without error, and the alerts provoked on purpose fire.
	testenv.WaitFor(t, 30*time.Second, "every rule evaluated without error", func() error {
		return monRulesHealthy(base)
	})
	for _, j := range monJobs {
		for _, name := range programs[j.name].firing {
			testenv.WaitFor(t, 30*time.Second, "alert "+name+" firing", func() error {
				return monAlertState(base, name, "firing")
			})
			t.Logf("alert %s fires", name)
		}
		for _, name := range programs[j.name].pending {
			testenv.WaitFor(t, 30*time.Second, "alert "+name+" pending", func() error {
				return monAlertState(base, name, "pending", "firing")
			})
			t.Logf("alert %s pending", name)
		}
	}
	// Stopping a job's program makes its down alert pending (its `for:` would make it fire).
	for _, g := range groups {
		down := monDownAlert(g, g.Name)
		if down == "" {
			t.Errorf("group %s: no `up{job=%q} == 0` alert", g.Name, g.Name)
			continue
		}
		programs[g.Name].stop()
		testenv.WaitFor(t, 30*time.Second, "alert "+down+" pending after stopping "+g.Name, func() error {
			return monAlertState(base, down, "pending", "firing")
		})
		t.Logf("alert %s pending after stopping %s", down, g.Name)
	}
}

// monStartTracker starts the tracker for the live test: an --allowed_dir with one torrent,
// NAT checking on, a state save every second, an announce rate limit, a FastCGI listener
// beside HTTP, and a corrupt state file to start from (which WebswarmTrackerStateLoadFailed
// must report); and a second instance of the job on a Redis store.
func monStartTracker(t *testing.T, _ map[string]*monProgram) *monProgram {
	port := testenv.FreePort(t, "127.0.0.1")
	announceURL := fmt.Sprintf("http://127.0.0.1:%d/announce", port)
	seedDir := filepath.Join(t.TempDir(), "seed")
	data := writePayload(t, seedDir, "payload.bin", 2<<20+4321)
	torrent := makeTorrent(t, filepath.Join(seedDir, "payload.bin"), announceURL)
	ti := readTorrent(t, torrent)
	dfile := filepath.Join(t.TempDir(), "state.bencode")
	if err := os.WriteFile(dfile, []byte("this is not bencode"), 0o644); err != nil {
		t.Fatal(err)
	}
	// FastCGI as well as HTTP, as a site behind Apache's mod_proxy_fcgi or nginx's
	// fastcgi_pass runs it: the FastCGI limits' metrics exist only then.
	fcgiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")))
	args := append(slices.Clone(trackerTestArgs), "--port", strconv.Itoa(port), "--dfile", dfile,
		"--allowed_dir", filepath.Dir(torrent), "--nat_check", "1", "--save_dfile_interval", "1",
		"--max_announce_rate", "1", "--fcgi", fcgiAddr)
	tp := startTracker(t, args...)
	allowedDir := filepath.Dir(torrent)
	// A second instance of the job on a Redis store: the store's metrics exist only there.
	rt := startTracker(t, "--store", "redis://"+testenv.StartRedis(t))

	allow := func(torrent string) {
		t.Helper()
		b, err := os.ReadFile(torrent)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(allowedDir, filepath.Base(torrent)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := tp.Proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// A stopped announce of a peer the tracker never saw: refused until the torrent
		// is allowed, and adds no peer once it is.
		q := announceQuery(readTorrent(t, torrent).InfoHash, "-WS0001-allowprobe01", 6881, 0, "event=stopped")
		testenv.WaitFor(t, 15*time.Second, "tracker to allow "+filepath.Base(torrent), func() error {
			_, err := announce(tp.Announce, q)
			return err
		})
	}

	traffic := func() {
		// A real swarm: aria2 seeds, aria2 downloads; the bytes must match.
		startAria2Seed(t, torrent, seedDir, ipSeeder)
		waitSeeder(t, tp.Base+"/scrape", ti)
		out := filepath.Join(t.TempDir(), "get")
		aria2Get(t, torrent, out, ipGetter, 2*time.Minute)
		sameFile(t, filepath.Join(out, "payload.bin"), data)

		// Refusals: a missing info_hash, a bad port, a torrent outside --allowed_dir.
		var other [20]byte
		copy(other[:], "not-in-allowed-dir!!")
		for _, q := range []string{
			"peer_id=-WS0001-monitor00001&port=6881&uploaded=0&downloaded=0&left=1",
			announceQuery(ti.InfoHash, "-WS0001-monitor00002", 0, 1),
			announceQuery(other, "-WS0001-monitor00003", 6881, 1),
		} {
			if _, err := announce(tp.Announce, q); err == nil {
				t.Errorf("announce ?%s: accepted, want a failure reason", q)
			}
		}
		// Over --max_announce_rate (1/s, bursts of 10) from one address.
		monRateLimited(t, tp.Announce, ti.InfoHash)
		// BEP 15 connect, a FastCGI request, a full scrape, the stats page.
		monUDPConnect(t, tp.UDPAddr())
		fcgiHealthy(t, "tcp", fcgiAddr, "from the monitoring test")
		for _, path := range []string{"/scrape", "/"} {
			if _, err := trackerGet(tp.Base + path); err != nil {
				t.Error(err)
			}
		}
		// Announces through the Redis store: its call latency and error series.
		for i := range 5 {
			q := announceQuery(ti.InfoHash, fmt.Sprintf("-WS0001-redis%07d", i), 6881+i, 1)
			if _, err := announce(rt.Announce, q); err != nil {
				t.Error(err)
			}
		}
	}
	return &monProgram{
		target:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		more:     []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(rt.Port))},
		traffic:  traffic,
		stop:     func() { tp.Proc.Stop(10 * time.Second); rt.Proc.Stop(10 * time.Second) },
		firing:   []string{"WebswarmTrackerStateLoadFailed"},
		announce: tp.Announce,
		allow:    allow,
	}
}

// monStartSeed starts `seedctl agent` for the live test on a directory in the publish layout
// (payload beside its .torrent) holding four torrents, all announcing to the tracker
// started before it: one registered with the tracker (a real client downloads it from the
// agent alone), one whose payload is missing (in error: WebswarmSeedTorrentInError), one
// outside the tracker's --allowed_dir (refused: WebswarmSeedTorrentUnregistered), and one
// listing only the tracker's ws:// URL, which `seedctl get` downloads from the agent over
// WebRTC (on loopback: both bind WebRTC to 127.0.0.1), so that the transport panels show a
// webrtc peer and its bytes.
func monStartSeed(t *testing.T, started map[string]*monProgram) *monProgram {
	tr := started["webswarm-tracker"]
	if tr == nil || tr.allow == nil {
		t.Fatal("the seed job needs the tracker job started before it")
	}
	dir := filepath.Join(t.TempDir(), "www")
	data := writePayload(t, dir, "published.bin", 3<<20+777)
	published := monPublish(t, dir, filepath.Join(dir, "published.bin"), tr.announce)
	tr.allow(published)
	writePayload(t, dir, "unlisted.bin", 1<<20+5)
	monPublish(t, dir, filepath.Join(dir, "unlisted.bin"), tr.announce)
	// The payload is made elsewhere and left behind: only the .torrent reaches dir.
	elsewhere := t.TempDir()
	writePayload(t, elsewhere, "gone.bin", 100<<10)
	monPublish(t, dir, filepath.Join(elsewhere, "gone.bin"), tr.announce)
	// Big enough that the WebRTC getter, capped at 16 KiB/s, is still a peer when the panels
	// are queried; the test stops it at the end.
	writePayload(t, dir, "webrtc.bin", 4<<20)
	rtcTorrent := monPublish(t, dir, filepath.Join(dir, "webrtc.bin"), "ws"+strings.TrimPrefix(tr.announce, "http"))
	tr.allow(rtcTorrent)

	metricsPort := testenv.FreePort(t, "127.0.0.1")
	metrics := net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort))
	// The agent binds 127.0.0.1, the address its announces come from, so the tracker hands
	// out an address it listens on.
	ap := testenv.Start(t, testenv.Build(t, "./seedctl"), "agent", "--dir", dir, "--state", t.TempDir(),
		"--metrics", metrics, "--bind", "127.0.0.1", "--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")),
		"--rescan-interval", "5s", "--webrtc-bind", "127.0.0.1")
	metricsURL := "http://" + metrics + "/metrics"
	testenv.WaitFor(t, 60*time.Second, "agent seeding one torrent, one in error", func() error {
		if done, err := ap.Exited(); done {
			t.Fatalf("seedctl agent exited (%v):\n%s", err, testenv.Tail([]byte(ap.Output()), 4000))
		}
		for _, want := range []string{`webswarm_seed_torrents{state="seeding"}`, `webswarm_seed_torrents{state="error"}`} {
			if n, err := monMetric(metricsURL, want); err != nil || n < 1 {
				return fmt.Errorf("%s = %v, %v", want, n, err)
			}
		}
		return nil
	})

	traffic := func() {
		// aria2 downloads the published torrent: the agent is its only seeder.
		out := t.TempDir()
		aria2Get(t, published, out, "127.0.0.8", 2*time.Minute)
		sameFile(t, filepath.Join(out, "published.bin"), data)
		testenv.WaitFor(t, 10*time.Second, "the agent to count the upload", func() error {
			n, err := monMetric(metricsURL, "webswarm_seed_uploaded_bytes_total")
			if err != nil || n < float64(len(data)) {
				return fmt.Errorf("webswarm_seed_uploaded_bytes_total = %v (%v), want >= %d", n, err, len(data))
			}
			return nil
		})

		// A WebRTC peer: seedctl get of the ws:// torrent, which only the agent seeds.
		getter, _ := spStartSeedctlPort(t, t.TempDir(), "127.0.0.1", "get", rtcTorrent, "--out", t.TempDir(),
			"--webrtc", "on", "--webrtc-bind", "127.0.0.1", "--max-download-rate", "16")
		testenv.WaitFor(t, 60*time.Second, "the agent to serve a WebRTC peer", func() error {
			if done, err := getter.Exited(); done {
				t.Fatalf("seedctl get exited (%v):\n%s", err, testenv.Tail([]byte(getter.Output()), 4000))
			}
			for _, want := range []string{`webswarm_seed_transport_peers{transport="webrtc"}`, `webswarm_seed_transport_uploaded_bytes_total{transport="webrtc"}`} {
				if n, err := monMetric(metricsURL, want); err != nil || n < 1 {
					return fmt.Errorf("%s = %v, %v", want, n, err)
				}
			}
			return nil
		})
	}
	return &monProgram{
		target:  metrics,
		traffic: traffic,
		stop:    func() { ap.Stop(15 * time.Second) },
		pending: []string{"WebswarmSeedTorrentInError", "WebswarmSeedTorrentUnregistered"},
		panelSamples: []monPanelSample{
			{panel: "Peers by transport", label: "transport", value: "webrtc"},
			{panel: "Upload and download rate by transport", label: "transport", value: "webrtc"},
		},
	}
}

// monPublish makes a .torrent of payload announcing to announceURL and puts it in dir
// beside the payload's name (the publish layout); it returns the .torrent's path.
func monPublish(t *testing.T, dir, payload, announceURL string) string {
	t.Helper()
	b, err := os.ReadFile(makeTorrent(t, payload, announceURL))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(payload)+".torrent")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// monMetric returns the value of the sample named (with its labels, as exposed) sample
// from a Prometheus text exposition at metricsURL.
func monMetric(metricsURL, sample string) (float64, error) {
	body, err := trackerGet(metricsURL)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no sample %s", metricsURL, sample)
}

// monRateLimited announces from 127.0.0.4 until the tracker refuses one for the rate limit.
func monRateLimited(t *testing.T, announceURL string, ih [20]byte) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 4)}}).DialContext,
	}}
	defer client.CloseIdleConnections()
	for i := range 40 {
		q := announceQuery(ih, fmt.Sprintf("-WS0001-ratelimit%03d", i), 6881+i, 1)
		resp, err := client.Get(announceURL + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), "slow down") {
			return
		}
	}
	t.Fatal("40 announces in a burst from 127.0.0.4: none refused by --max_announce_rate 1")
}

// monUDPConnect sends a BEP 15 connect request and checks the reply.
func monUDPConnect(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := make([]byte, 16)
	binary.BigEndian.PutUint64(req, 0x41727101980) // the protocol ID
	binary.BigEndian.PutUint32(req[12:], 0x5eed)   // action 0 (connect), transaction ID
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 64)
	n, err := c.Read(resp)
	if err != nil {
		t.Fatalf("UDP connect to %s: %v", addr, err)
	}
	if n != 16 || binary.BigEndian.Uint32(resp) != 0 || binary.BigEndian.Uint32(resp[4:]) != 0x5eed {
		t.Fatalf("UDP connect reply % x: want 16 bytes, action 0, transaction 5eed", resp[:n])
	}
}

// monExpr is an expression the live test runs, and what it comes from.
type monExpr struct {
	what, expr string
	label      string // when set, the result must carry this label
}

// monDashboard is a Grafana dashboard file, read for its queries and variables.
type monDashboard struct {
	file          string
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []monPanel
	Templating    struct {
		List []monVariable `json:"list"`
	} `json:"templating"`

	queries      []monQuery
	labelQueries []monLabelQuery
	vars         map[string]string // variable -> value that selects everything
	problems     []string
}

type monPanel struct {
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []monPanel `json:"panels"` // a row's panels
}

type monVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
	AllValue   string          `json:"allValue"`
	IncludeAll bool            `json:"includeAll"`
	Datasource json.RawMessage `json:"datasource"`
}

type monQuery struct{ panel, expr string }

// monLabelQuery is a variable's label_values(selector, label) as a PromQL query.
type monLabelQuery struct{ name, expr, label string }

// monDatasource is the only datasource panels may name: the dashboard's variable, so that
// it works imported or provisioned, against any Prometheus.
const monDatasource = "${DS_PROMETHEUS}"

var monLabelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// monLoadDashboards reads every monitoring/dashboards/*.json.
func monLoadDashboards(t *testing.T) []*monDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "monitoring", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*monDashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &monDashboard{file: f, vars: map[string]string{}}
		if err := json.Unmarshal(b, d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" {
			d.problems = append(d.problems, "no uid or title")
		}
		for _, v := range d.Templating.List {
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil {
				var obj struct{ Query string }
				_ = json.Unmarshal(v.Query, &obj)
				q = obj.Query
			}
			switch v.Type {
			case "datasource":
				if v.Name != "DS_PROMETHEUS" || q != "prometheus" {
					d.problems = append(d.problems, fmt.Sprintf("datasource variable %s (%s): want DS_PROMETHEUS of type prometheus", v.Name, q))
				}
			case "constant":
				d.vars[v.Name] = q
			case "query", "custom":
				if !v.IncludeAll {
					d.problems = append(d.problems, fmt.Sprintf("variable %s: no All option", v.Name))
				}
				d.vars[v.Name] = cmp.Or(v.AllValue, ".*")
				if m := monLabelValues.FindStringSubmatch(q); v.Type == "query" && m != nil {
					d.labelQueries = append(d.labelQueries, monLabelQuery{name: v.Name, expr: m[1], label: m[2]})
				}
			default:
				d.problems = append(d.problems, fmt.Sprintf("variable %s: type %s not handled by this test", v.Name, v.Type))
			}
		}
		if d.vars["job"] == "" {
			d.problems = append(d.problems, `no constant variable "job" naming its scrape job`)
		}
		// The label queries may use the constant variables.
		for i, lq := range d.labelQueries {
			e, err := monExpand(lq.expr, d.vars)
			if err != nil {
				d.problems = append(d.problems, fmt.Sprintf("variable %s: %v", lq.name, err))
			}
			d.labelQueries[i].expr = e
		}
		var walk func([]monPanel)
		walk = func(ps []monPanel) {
			for _, p := range ps {
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				if len(p.Targets) == 0 {
					d.problems = append(d.problems, fmt.Sprintf("panel %q has no queries", p.Title))
				}
				if !monIsDatasource(p.Datasource) {
					d.problems = append(d.problems, fmt.Sprintf("panel %q: datasource %s, want uid %s", p.Title, p.Datasource, monDatasource))
				}
				for _, tg := range p.Targets {
					if strings.TrimSpace(tg.Expr) == "" {
						d.problems = append(d.problems, fmt.Sprintf("panel %q: a target without expr", p.Title))
						continue
					}
					if tg.Datasource != nil && !monIsDatasource(tg.Datasource) {
						d.problems = append(d.problems, fmt.Sprintf("panel %q: target datasource %s", p.Title, tg.Datasource))
					}
					d.queries = append(d.queries, monQuery{panel: p.Title, expr: tg.Expr})
				}
			}
		}
		walk(d.Panels)
		out = append(out, d)
	}
	return out
}

func monIsDatasource(raw json.RawMessage) bool {
	var ds struct{ Type, UID string }
	return json.Unmarshal(raw, &ds) == nil && ds.Type == "prometheus" && ds.UID == monDatasource
}

// monGrafanaVar matches Grafana's variable syntaxes: ${name}, ${name:format}, $name, [[name]].
var monGrafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// monExpand replaces Grafana variables in expr by the values in vars, and Grafana's
// built-in interval variables by fixed durations; an unknown variable is an error.
func monExpand(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := monGrafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sm := monGrafanaVar.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		switch name {
		case "__rate_interval", "__interval":
			return monRateInterval
		case "__range":
			return "1h"
		}
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
		}
		return v
	})
	if unknown != nil {
		return "", fmt.Errorf("unknown variables %v in %s", unknown, expr)
	}
	return out, nil
}

// monRuleGroup is a group of alert-rules.yml.
type monRuleGroup struct {
	Name  string `yaml:"name"`
	Rules []struct {
		Alert string `yaml:"alert"`
		Expr  string `yaml:"expr"`
	} `yaml:"rules"`
}

func monLoadRuleGroups(t *testing.T) []monRuleGroup {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "monitoring", "alert-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []monRuleGroup `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alert-rules.yml: %v", err)
	}
	return f.Groups
}

// monDownAlert returns the group's alert on `up{job="JOB"} == 0`, or "".
func monDownAlert(g monRuleGroup, job string) string {
	want := fmt.Sprintf("up{job=%q}==0", job)
	for _, r := range g.Rules {
		if strings.Join(strings.Fields(r.Expr), "") == want {
			return r.Alert
		}
	}
	return ""
}

// monOperands splits a rule expression at its top-level and/or/unless (with their on(...)
// or ignoring(...)) and cuts each part before its top-level comparison, returning what is
// compared: `a > 1 and on (x) b < 2` gives a and b.
func monOperands(expr string) []string {
	var parts []string
	depth, start := 0, 0
	var quote byte
	cut := -1 // where the current part's comparison begins
	flush := func(end int) {
		e := end
		if cut >= 0 {
			e = cut
		}
		parts = append(parts, strings.TrimSpace(expr[start:e]))
		cut = -1
	}
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '{' || c == '[':
			depth++
		case c == ')' || c == '}' || c == ']':
			depth--
		case depth > 0:
		case c == '=' && i+1 < len(expr) && expr[i+1] == '=', c == '!' && i+1 < len(expr) && expr[i+1] == '=',
			c == '>', c == '<':
			if cut < 0 {
				cut = i
			}
		case monWordAt(expr, i, "and"), monWordAt(expr, i, "or"), monWordAt(expr, i, "unless"):
			flush(i)
			for i < len(expr) && expr[i] != ' ' && expr[i] != '\n' && expr[i] != '\t' {
				i++
			}
			rest := strings.TrimLeft(expr[i:], " \t\n")
			for _, mod := range []string{"on", "ignoring"} {
				if monWordAt(rest, 0, mod) {
					if j := strings.IndexByte(rest, ')'); j >= 0 {
						rest = rest[j+1:]
					}
				}
			}
			i = len(expr) - len(rest) - 1
			start = i + 1
		}
	}
	flush(len(expr))
	return parts
}

// monWordAt reports whether s holds the word w at i (not inside a longer identifier).
func monWordAt(s string, i int, w string) bool {
	ident := func(b byte) bool {
		return b == '_' || b == ':' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
	}
	return strings.HasPrefix(s[i:], w) && (i == 0 || !ident(s[i-1])) && (i+len(w) == len(s) || !ident(s[i+len(w)]))
}

// monConfigJobs lists the job names of monitoring/prometheus.yml.
func monConfigJobs(t *testing.T) []string {
	t.Helper()
	cfg := monReadConfig(t)
	var jobs []string
	for _, sc := range monList(cfg["scrape_configs"]) {
		if m, ok := sc.(map[string]any); ok {
			jobs = append(jobs, fmt.Sprint(m["job_name"]))
		}
	}
	return jobs
}

func monReadConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "monitoring", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	return cfg
}

func monList(v any) []any {
	l, _ := v.([]any)
	return l
}

// monWriteConfig writes the shipped prometheus.yml into dir with only these changes: 1 s
// scrape and evaluation intervals, each job's static targets replaced by targets[job], and
// jobs without a target left out. The rule files are copied beside it, so the relative
// rule_files entries stay as shipped.
func monWriteConfig(t *testing.T, dir string, targets map[string][]string) string {
	t.Helper()
	cfg := monReadConfig(t)
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["scrape_interval"] = "1s"
	global["evaluation_interval"] = "1s"
	var kept []any
	for _, sc := range monList(cfg["scrape_configs"]) {
		m, _ := sc.(map[string]any)
		job := fmt.Sprint(m["job_name"])
		target, ok := targets[job]
		if !ok {
			t.Logf("prometheus.yml: job %s left out (this test does not start its program)", job)
			continue
		}
		if len(monList(m["static_configs"])) != 1 {
			t.Fatalf("prometheus.yml: job %s: want one static_configs entry to point at the test's target", job)
		}
		var list []any
		for _, tg := range target {
			list = append(list, tg)
		}
		m["static_configs"] = []any{map[string]any{"targets": list}}
		kept = append(kept, m)
	}
	cfg["scrape_configs"] = kept
	for _, rf := range monList(cfg["rule_files"]) {
		name := fmt.Sprint(rf)
		if filepath.IsAbs(name) || strings.ContainsAny(name, "*?[") {
			t.Fatalf("prometheus.yml: rule file %q: want a plain path relative to the config", name)
		}
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "monitoring", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// monAPI calls a Prometheus HTTP API endpoint and decodes its data into v.
func monAPI(u string, v any) error {
	body, err := trackerGet(u)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", u, r.Status, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// errMonNoData is a query that ran but returned no sample with a number.
var errMonNoData = errors.New("no data")

// monWantData requires expr to return at least one sample that is a number (not NaN).
func monWantData(base, expr string) error { return monWantLabelData(base, expr, "") }

// monWantLabelData is monWantData where, when label is set, a sample must carry it.
func monWantLabelData(base, expr, label string) error {
	samples, err := monQuerySamples(base, expr)
	if err != nil {
		return err
	}
	for _, s := range samples {
		if math.IsNaN(s.value) {
			continue
		}
		if label != "" && s.metric[label] == "" {
			continue
		}
		return nil
	}
	return fmt.Errorf("%w (%d samples, all NaN or without the wanted label)", errMonNoData, len(samples))
}

// monWantSample fails unless expr returns a sample above 0 whose label has the value value.
func monWantSample(base, expr, label, value string) error {
	samples, err := monQuerySamples(base, expr)
	if err != nil {
		return err
	}
	for _, s := range samples {
		if s.metric[label] == value && s.value > 0 {
			return nil
		}
	}
	return fmt.Errorf("%s: no sample with %s=%q above 0 in %+v", expr, label, value, samples)
}

// monSample is one sample of an instant query's result.
type monSample struct {
	metric map[string]string
	value  float64 // NaN when Prometheus's value is not a number
}

// monQuerySamples runs an instant query whose result is a vector or a scalar.
func monQuerySamples(base, expr string) ([]monSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := monAPI(base+"/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, err
	}
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	var raw []sample
	switch data.ResultType {
	case "vector":
		if err := json.Unmarshal(data.Result, &raw); err != nil {
			return nil, err
		}
	case "scalar":
		var s sample
		if err := json.Unmarshal(data.Result, &s.Value); err != nil {
			return nil, err
		}
		raw = append(raw, s)
	default:
		return nil, fmt.Errorf("result type %s, want an instant vector or scalar", data.ResultType)
	}
	samples := make([]monSample, 0, len(raw))
	for _, s := range raw {
		str, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			f = math.NaN()
		}
		samples = append(samples, monSample{metric: s.Metric, value: f})
	}
	return samples, nil
}

// monRulesHealthy requires every rule to have been evaluated, without error.
func monRulesHealthy(base string) error {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name           string    `json:"name"`
				Health         string    `json:"health"`
				LastError      string    `json:"lastError"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := monAPI(base+"/api/v1/rules", &data); err != nil {
		return err
	}
	n := 0
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" || r.LastEvaluation.IsZero() {
				return fmt.Errorf("rule %s/%s: health %q %s (evaluated %v)", g.Name, r.Name, r.Health, r.LastError, r.LastEvaluation)
			}
		}
	}
	if n == 0 {
		return errors.New("prometheus loaded no rules")
	}
	return nil
}

// monAlertState requires alert name to be in one of states (pending, firing).
func monAlertState(base, name string, states ...string) error {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := monAPI(base+"/api/v1/alerts", &data); err != nil {
		return err
	}
	var seen []string
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name && slices.Contains(states, a.State) {
			return nil
		}
		seen = append(seen, a.Labels["alertname"]+"="+a.State)
	}
	return fmt.Errorf("alert %s not %v; active alerts: %v", name, states, seen)
}

// monRun runs a program in dir with a bound and returns its combined output.
func monRun(dir string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %v: %w", timeout, ctx.Err())
	}
	return string(out), err
}

func TestMonitoringOperands(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="x"} == 0`, []string{`up{job="x"}`}},
		{`rate(a{l=~"b|c", m!="d"}[5m]) > 1`, []string{`rate(a{l=~"b|c", m!="d"}[5m])`}},
		{"a / on (i) group_left () (b + c)\n> 0.25\nand on (job, instance)\nsum by (x) (d) > 0.1",
			[]string{"a / on (i) group_left () (b + c)", "sum by (x) (d)"}},
		{`time() - (x > 0 or on (j) y) > 900`, []string{`time() - (x > 0 or on (j) y)`}},
		{`a unless ignoring (k) b`, []string{"a", "b"}},
		{`sort_desc(a) >= bool 2 or b_or_c <= 3`, []string{"sort_desc(a)", "b_or_c"}},
		{`label_replace(a, "d", ">or<", "e", "f") != 1`, []string{`label_replace(a, "d", ">or<", "e", "f")`}},
		{`histogram_quantile(0.99, x)`, []string{`histogram_quantile(0.99, x)`}},
	} {
		if got := monOperands(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("monOperands(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestMonitoringExpand(t *testing.T) {
	vars := map[string]string{"job": "webswarm-tracker", "instance": ".+"}
	got, err := monExpand(`rate(x{job="$job", instance=~"${instance:regex}", a="[[job]]"}[$__rate_interval])`, vars)
	want := `rate(x{job="webswarm-tracker", instance=~".+", a="webswarm-tracker"}[` + monRateInterval + `])`
	if err != nil || got != want {
		t.Errorf("monExpand = %q, %v; want %q", got, err, want)
	}
	if _, err := monExpand(`x{job="$jobs"}`, vars); err == nil {
		t.Error("monExpand: unknown variable $jobs accepted")
	}
}
