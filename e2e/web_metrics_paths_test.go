package e2e

// /metrics is for local clients only through the site. A web server normalises a request path
// before it matches its access rules (percent-decoding, merged slashes, dot segments), and
// the tracker strips the mount prefix: every spelling that reaches the metrics route must meet
// the snippet's rule, on each of the paths (Apache and nginx, HTTP proxy and FastCGI).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// webMetricsSpellings are request targets a server or the tracker may map to /metrics.
var webMetricsSpellings = []string{
	"/tracker/metrics",
	"/tracker/metrics/",
	"/tracker/metrics?x=1",
	"/tracker/tracker/metrics",
	"/tracker/tracker/tracker/metrics",
	"/tracker//metrics",
	"/tracker///metrics",
	"/tracker/.//metrics",
	"/tracker/./metrics",
	"/tracker/%2e/metrics",
	"/tracker/%2E/metrics",
	"/tracker/x/../metrics",
	"/tracker/x/%2e%2e/metrics",
	"/tracker/stats/../metrics",
	"/tracker/metrics/.",
	"/tracker/metrics/./",
	"/tracker/%6detrics",
	"/tracker/%6Detrics",
	"/tracker/metric%73",
	"/tracker/%6d%65%74%72%69%63%73",
	"/tracker/tracker/%6detrics",
	"/tracker/tracker//metrics",
	"/tracker/%74racker/metrics",
	"/tracker/tracker/./metrics",
	"/tracker/METRICS",
	"/tracker/Metrics",
	"/tracker/metrics;x",
	"/tracker/metrics%3bx",
	"/tracker//tracker/metrics",
	"/tracker/%2fmetrics",
	"/tracker/%2Ftracker%2Fmetrics",
	"//tracker/metrics",
	"/./tracker/metrics",
	"/x/../tracker/metrics",
	"/%74racker/metrics",
	"/tracker%2fmetrics",
}

// TestWebMetricsSpellings asks for the metrics under every spelling in webMetricsSpellings
// from 127.0.0.2, which the snippets do not count as local: none may answer with the metrics.
// From 127.0.0.1 the plain spelling answers them, so the test knows what a leak looks like.
func TestWebMetricsSpellings(t *testing.T) {
	for _, p := range webPaths {
		t.Run(p.Name, func(t *testing.T) {
			s := webStartSite(t, p)
			addr := fmt.Sprintf("127.0.0.1:%d", s.Front.Port)
			code, body, err := webRawGet("127.0.0.1", addr, "/tracker/metrics")
			if err != nil || code != http.StatusOK || !isMetrics(body) {
				t.Fatalf("GET /tracker/metrics from 127.0.0.1: %d %v %.200q", code, err, body)
			}
			for _, target := range webMetricsSpellings {
				code, body, err := webRawGet("127.0.0.2", addr, target)
				if err != nil {
					t.Errorf("GET %s from 127.0.0.2: %v", target, err)
					continue
				}
				if isMetrics(body) || code < 300 {
					t.Errorf("GET %s from 127.0.0.2: %d %.80q: want the metrics refused (403 or 404)", target, code, body)
				}
			}
		})
	}
}

// isMetrics says whether body is a Prometheus exposition of the tracker's metrics.
func isMetrics(body []byte) bool {
	return strings.Contains(string(body), "webswarm_tracker_") || strings.Contains(string(body), "go_goroutines")
}

// webRawGet sends "GET target" byte for byte (no client-side cleaning) from localIP to addr
// and returns the status and body.
func webRawGet(localIP, addr, target string) (int, []byte, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n", target); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// TestWebMetricsRuleAlone runs each front end with no tracker behind it: every spelling the
// server normalises to a path ending in /metrics is refused by the snippet's own access rule
// (403, or 404 where the server refuses the spelling outright), never passed on (502/503).
// The rule then holds whatever the tracker behind makes of the path.
func TestWebMetricsRuleAlone(t *testing.T) {
	for _, p := range webPaths {
		t.Run(p.Name, func(t *testing.T) {
			dir := webDir(t)
			dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
			f := webStartFront(t, p, dir, webBackend{HTTPAddr: dead, FCGISocket: dir + "/tracker.sock", FCGIAddr: dead})
			addr := fmt.Sprintf("127.0.0.1:%d", f.Port)
			for _, target := range webMetricsSpellings {
				if strings.Contains(strings.ToLower(target), "metrics;x") || strings.Contains(strings.ToLower(target), "metrics%3bx") {
					continue // not a path ending in /metrics: the tracker's 404
				}
				code, _, err := webRawGet("127.0.0.2", addr, target)
				if err != nil || (code != http.StatusForbidden && code != http.StatusNotFound) {
					t.Errorf("GET %s from 127.0.0.2 with no tracker: %d %v, want 403 (or 404) from %s itself", target, code, err, p.Server)
				}
			}
		})
	}
}
