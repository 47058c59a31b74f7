package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestTrackerRedisWebServersFailover: two tracker instances on one real Redis behind one real
// web server — nginx with the several-instances upstream documented in
// nginx-conf/webswarm-upstreams.conf, and Apache with httpd-conf/webswarm-balancer.conf.
// aria2 seeds announcing to instance A only (its direct URL); libtorrent downloads through
// the web server, whose announces land on either instance; the bytes verify. Then A is
// killed, and a second file, seeded by aria2 through B's direct URL, still downloads
// through the web server.
func TestTrackerRedisWebServersFailover(t *testing.T) {
	requireLibtorrent(t)
	store := "redis://" + testenv.StartRedis(t)
	for _, server := range []string{"nginx", "apache"} {
		t.Run(server, func(t *testing.T) {
			prefix := "web-" + server + ":"
			a := startTracker(t, "--store", store, "--store_prefix", prefix)
			b := startTracker(t, "--store", store, "--store_prefix", prefix)
			dir := webDir(t)
			webWriteStatic(t, dir)
			front := webStartBalanced(t, server, dir, []string{httpAddr(a), httpAddr(b)})

			// Announces through the web server reach both instances (round robin); a
			// stopped announce of an unknown peer adds nothing to the swarm.
			c := webClient("127.0.0.1")
			before := []float64{announcesAt(t, a), announcesAt(t, b)}
			for i := range 10 {
				q := announceQuery(webRandHash(t), fmt.Sprintf("-WS0001-probe%07d", i), 6881, 0, "event=stopped")
				webAnnounce(t, c, front.URL, q, nil)
			}
			if announcesAt(t, a) == before[0] || announcesAt(t, b) == before[1] {
				t.Errorf("announces through %s: A %v → %v, B %v → %v; want both instances used",
					server, before[0], announcesAt(t, a), before[1], announcesAt(t, b))
			}

			balancedDownload(t, front, a, "first.bin", "127.0.0.7", "127.0.0.8")
			a.Proc.Kill()
			balancedDownload(t, front, b, "second.bin", "127.0.0.9", "127.0.0.10")
		})
	}
}

// announcesAt sums the tracker's announce counter (every event and outcome).
func announcesAt(t *testing.T, tr *trackerProc) float64 {
	t.Helper()
	body, err := trackerGet(tr.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, m := range regexp.MustCompile(`(?m)^webswarm_tracker_announces_total\{[^}]*\} (\S+)$`).FindAllSubmatch(body, -1) {
		var v float64
		fmt.Sscan(string(m[1]), &v)
		n += v
	}
	return n
}

// balancedDownload: aria2 on seedIP seeds a new payload announcing to seedAt's direct URL;
// libtorrent on getIP downloads it with the same torrent announcing through the web server.
func balancedDownload(t *testing.T, front *webFront, seedAt *trackerProc, name, seedIP, getIP string) {
	t.Helper()
	seedDir := filepath.Join(t.TempDir(), "seed")
	payload := writePayload(t, seedDir, name, 2<<20+777)
	direct := makeTorrent(t, filepath.Join(seedDir, name), seedAt.Announce)
	viaWeb := retrackTorrent(t, direct, front.URL+"/announce")
	ti := readTorrent(t, direct)
	startAria2Seed(t, direct, seedDir, seedIP)
	c := webClient("127.0.0.1")
	testenv.WaitFor(t, 30*time.Second, "the seeder of "+name+" seen through the web server", func() error {
		files := webScrape(t, c, front.URL, "info_hash="+escapeBytes(ti.InfoHash[:]))
		if st := files[string(ti.InfoHash[:])]; st.Complete < 1 {
			return fmt.Errorf("scrape: %+v", st)
		}
		return nil
	})
	out := filepath.Join(t.TempDir(), "get")
	libtorrentGet(t, viaWeb, out, getIP, 2*time.Minute)
	sameFile(t, filepath.Join(out, name), payload)
}

// webStartBalanced starts nginx or Apache in dir in front of the tracker instances at addrs
// (host:port), with the shipped several-instances configuration: for nginx, the upstream
// block documented in webswarm-upstreams.conf (uncommented, its example addresses replaced)
// and the shipped webswarm-proxy.conf; for Apache, webswarm-balancer.conf.
func webStartBalanced(t *testing.T, server, dir string, addrs []string) *webFront {
	t.Helper()
	if len(addrs) != 2 {
		t.Fatalf("webStartBalanced: %d instances, the documented forms have 2", len(addrs))
	}
	port := webFreePort(t)
	be := webBackend{HTTPAddr: addrs[0], HTTPAddr2: addrs[1]}
	switch server {
	case "nginx":
		p := webPath{Name: "nginx-balanced", Server: "nginx", Snippet: "webswarm-proxy.conf"}
		conf := webNginxConf(t, dir, port, p.Snippet, be)
		up := documentedUpstream(t, addrs)
		if err := os.WriteFile(filepath.Join(dir, "webswarm-upstreams.conf"), []byte(up), 0o644); err != nil {
			t.Fatal(err)
		}
		return webRunFront(t, p, dir, port, webNginxCmd(t, dir, conf, "-g", "daemon off;"))
	default:
		p := webPath{Name: "apache-balanced", Server: "apache", Snippet: "webswarm-balancer.conf"}
		return webRunFront(t, p, dir, port, webApacheCmd(t, dir, port, p.Snippet, be, "-DFOREGROUND"))
	}
}

// documentedUpstream returns the several-instances upstream of nginx-conf/
// webswarm-upstreams.conf, uncommented, with the test's addresses for its two examples, and
// the FastCGI upstream the other snippets name.
func documentedUpstream(t *testing.T, addrs []string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "nginx-conf", "webswarm-upstreams.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)# --- several instances \(begin\)\n(.*?)# --- several instances \(end\)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("webswarm-upstreams.conf: no several-instances block")
	}
	var sb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(m[1])), "\n") {
		sb.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ") + "\n")
	}
	up := sb.String()
	for i, example := range []string{"10.0.0.1:6969", "10.0.0.2:6969"} {
		if !strings.Contains(up, example) {
			t.Fatalf("webswarm-upstreams.conf: the several-instances block no longer names %s", example)
		}
		up = strings.ReplaceAll(up, example, addrs[i])
	}
	return up + "upstream webswarm_fcgi {\n    server unix:/nonexistent.sock;\n}\n"
}

// httpAddr is the tracker's HTTP listener, host:port.
func httpAddr(tr *trackerProc) string { return fmt.Sprintf("127.0.0.1:%d", tr.Port) }
