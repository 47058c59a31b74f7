package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestWebConfigSyntax checks every shipped snippet with the servers' own config test
// (`apache2 -t`, `nginx -t`), included unchanged from a self-contained main config.
func TestWebConfigSyntax(t *testing.T) {
	be := webBackend{HTTPAddr: "127.0.0.1:6969", HTTPAddr2: "127.0.0.1:6971", FCGIAddr: "127.0.0.1:6970"}
	for _, snippet := range []string{"webswarm-proxy.conf", "webswarm-fcgi.conf", "webswarm-fcgi-tcp.conf", "webswarm-balancer.conf"} {
		t.Run("apache/"+snippet, func(t *testing.T) {
			dir := webDir(t)
			be := be
			be.FCGISocket = dir + "/tracker.sock"
			out, err := webApacheCmd(t, dir, 8080, snippet, be, "-t").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Syntax OK") {
				t.Fatalf("apache2 -t: %v\n%s", err, out)
			}
			// Warnings (an undefined variable, a shared worker ignoring parameters) go to
			// the same output; the snippets must not cause any.
			if strings.Contains(string(out), "AH0") {
				t.Errorf("apache2 -t warns:\n%s", out)
			}
		})
	}
	for _, snippet := range []string{"webswarm-proxy.conf", "webswarm-fcgi.conf"} {
		t.Run("nginx/"+snippet, func(t *testing.T) {
			dir := webDir(t)
			be := be
			be.FCGISocket = dir + "/tracker.sock"
			conf := webNginxConf(t, dir, 8080, snippet, be)
			out, err := webNginxCmd(t, dir, conf, "-t").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "test is successful") {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "[warn]") {
				t.Errorf("nginx -t warns:\n%s", out)
			}
		})
	}
}

// TestWebFrontEndAlone runs each front end with its snippets and no tracker behind it: the
// site keeps its MIME types and gains .torrent, the mount point redirects, metrics are refused
// to other clients before anything is proxied, and the tracker's URLs answer 502/503.
func TestWebFrontEndAlone(t *testing.T) {
	for _, p := range webPaths {
		t.Run(p.Name, func(t *testing.T) {
			dir := webDir(t)
			webWriteStatic(t, dir)
			// A port nothing listens on, and a socket path that does not exist.
			dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
			f := webStartFront(t, p, dir, webBackend{HTTPAddr: dead, FCGISocket: dir + "/tracker.sock"})

			webCheckStatic(t, f)

			c := webClient("127.0.0.2")
			code, h, _, err := webGet(c, f.URL+"/tracker", nil)
			if err != nil || code != http.StatusMovedPermanently || !strings.HasSuffix(h.Get("Location"), "/tracker/") {
				t.Errorf("GET /tracker: %d Location %q %v, want 301 to /tracker/", code, h.Get("Location"), err)
			}
			code, _, _, err = webGet(c, f.URL+"/tracker/metrics", nil)
			if err != nil || code != http.StatusForbidden {
				t.Errorf("GET /tracker/metrics from 127.0.0.2: %d %v, want 403", code, err)
			}
			for _, path := range []string{"/announce?info_hash=%00", "/scrape", "/tracker/", "/tracker/stats.json"} {
				code, _, _, err := webGet(c, f.URL+path, nil)
				if err != nil || (code != http.StatusBadGateway && code != http.StatusServiceUnavailable) {
					t.Errorf("GET %s with no tracker: %d %v, want 502 or 503", path, code, err)
				}
			}
		})
	}
}

// TestWebFrontEndFixedBackend puts a stand-in backend that reports what it received behind
// the HTTP proxy snippets: the query bytes, the client address in X-Real-IP (a client's own
// X-Real-IP overwritten) and the prefix header.
func TestWebFrontEndFixedBackend(t *testing.T) {
	type seen struct{ path, query, realIP, prefix string }
	got := make(chan seen, 16)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Real-IP"), r.Header.Get("X-Forwarded-Prefix")}
		w.Write([]byte("d8:intervali60e5:peers0:e"))
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	const query = "info_hash=%00%2F%2f;%3B%2B+%25%FF&peer_id=-XX0000-%3B%3b%00abcdefghijk&port=6881"
	for _, p := range webPaths {
		if p.FCGI {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			dir := webDir(t)
			f := webStartFront(t, p, dir, webBackend{HTTPAddr: l.Addr().String()})
			c := webClient("127.0.0.3")
			spoof := map[string]string{"X-Real-IP": "6.6.6.6", "X-Forwarded-For": "7.7.7.7", "X-Forwarded-Prefix": "/evil"}
			for _, tc := range []struct {
				url  string
				want seen
			}{
				{"/announce?" + query, seen{"/announce", query, "127.0.0.3", ""}},
				{"/scrape?" + query, seen{"/scrape", query, "127.0.0.3", ""}},
				{"/tracker/stats.json?a=%2F", seen{"/stats.json", "a=%2F", "127.0.0.3", "/tracker"}},
			} {
				code, _, body, err := webGet(c, f.URL+tc.url, spoof)
				if err != nil || code != 200 {
					t.Fatalf("GET %s: %d %v %s", tc.url, code, err, body)
				}
				select {
				case s := <-got:
					if s != tc.want {
						t.Errorf("GET %s: backend saw %+v, want %+v", tc.url, s, tc.want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("GET %s: the backend saw nothing", tc.url)
				}
			}
		})
	}
}
