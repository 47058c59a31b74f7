package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// wsdSite is a real nginx or Apache serving Dir/htdocs on 127.0.0.1:Port, with the shipped
// webswarm-webseed.conf included in the location /pub/ only.
type wsdSite struct {
	Server string // nginx | apache
	Dir    string
	Port   int
	URL    string // http://127.0.0.1:Port
}

// wsdStart renders testdata/webseed-SERVER.conf.tmpl into a new directory (webDir) and starts
// the server on it; the caller writes files under Dir/htdocs.
func wsdStart(t *testing.T, server string) *wsdSite {
	t.Helper()
	var bin string
	switch server {
	case "nginx":
		bin = testenv.Require(t, "nginx", "nginx")
	case "apache":
		bin = testenv.Require(t, "apache2", "apache2")
	default:
		t.Fatalf("unknown server %q", server)
	}
	dir := webDir(t)
	port := testenv.FreePort(t, "127.0.0.1")
	root := testenv.RepoRoot(t)
	conf := map[string]string{"nginx": "nginx-conf", "apache": "httpd-conf"}[server]
	tmpl, err := template.ParseFiles(filepath.Join(root, "e2e", "testdata", "webseed-"+server+".conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	u, g := webUser(t)
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]any{"Dir": dir, "Port": port, "Conf": filepath.Join(root, conf), "User": u, "Group": g}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, server+".conf")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if server == "nginx" {
		cmd = exec.Command(bin, "-p", dir+"/", "-c", file, "-g", "daemon off;")
	} else {
		cmd = exec.Command(bin, "-f", file, "-DFOREGROUND")
	}
	proc := testenv.StartCmd(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- %s error.log:\n%s", server, testenv.Tail(b, 4000))
		}
	})
	testenv.WaitFor(t, 10*time.Second, server+" to listen", func() error {
		if done, err := proc.Exited(); done {
			return fmt.Errorf("%s exited: %v\n%s", server, err, proc.Output())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return &wsdSite{Server: server, Dir: dir, Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// wsdRandom returns n bytes of a fixed pseudo-random stream.
func wsdRandom(n int) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestWebseedCORS checks the shipped webswarm-webseed.conf snippets through a real nginx and a
// real Apache: the preflight webtorrent's Range requests need, 206 with a correct
// Content-Range for a single and an open-ended range, 416 beyond the end, the headers a page
// must read exposed, one range per request — and no CORS header anywhere else on the site.
func TestWebseedCORS(t *testing.T) {
	for _, server := range []string{"nginx", "apache"} {
		t.Run(server, func(t *testing.T) {
			s := wsdStart(t, server)
			data := wsdRandom(300_000)
			wsWriteFile(t, filepath.Join(s.Dir, "htdocs", "pub", "big file #1.iso"), data)
			wsWriteFile(t, filepath.Join(s.Dir, "htdocs", "other", "page.txt"), []byte("not a web seed\n"))
			wsWriteFile(t, filepath.Join(s.Dir, "htdocs", "top.txt"), []byte("not a web seed\n"))
			const origin = "http://localhost:8080"
			file := s.URL + "/pub/big%20file%20%231.iso"
			size := len(data)

			do := func(method, url string, hdr ...string) (*http.Response, []byte) {
				t.Helper()
				req, err := http.NewRequest(method, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Origin", origin)
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				c := &http.Client{Timeout: 10 * time.Second}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp, body
			}
			corsGET := func(resp *http.Response) {
				t.Helper()
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want *", resp.Request.URL, got)
				}
				exp := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
				for _, h := range []string{"content-range", "content-length", "accept-ranges"} {
					if !strings.Contains(exp, h) {
						t.Errorf("%s: Access-Control-Expose-Headers %q lacks %s", resp.Request.URL, exp, h)
					}
				}
			}

			// The preflight Chromium sends before webtorrent's first Range request.
			resp, _ := do(http.MethodOptions, file, "Access-Control-Request-Method", "GET",
				"Access-Control-Request-Headers", "cache-control,range,user-agent")
			if resp.StatusCode/100 != 2 {
				t.Errorf("preflight: %s, want 2xx", resp.Status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("preflight: Access-Control-Allow-Origin %q", got)
			}
			allow := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
			for _, h := range []string{"range", "cache-control", "user-agent"} {
				if !strings.Contains(allow, h) {
					t.Errorf("preflight: Access-Control-Allow-Headers %q lacks %s", allow, h)
				}
			}
			if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "GET") {
				t.Errorf("preflight: Access-Control-Allow-Methods %q lacks GET", m)
			}

			for _, tc := range []struct {
				rng        string
				from, to   int // inclusive
				wantStatus int
			}{
				{"bytes=0-99", 0, 99, http.StatusPartialContent},
				{"bytes=123456-234567", 123456, 234567, http.StatusPartialContent},
				{"bytes=250000-", 250000, size - 1, http.StatusPartialContent},
				{"bytes=299999-400000", 299999, size - 1, http.StatusPartialContent},
			} {
				resp, body := do(http.MethodGet, file, "Range", tc.rng)
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("%s: %s, want %d", tc.rng, resp.Status, tc.wantStatus)
					continue
				}
				want := fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, size)
				if got := resp.Header.Get("Content-Range"); got != want {
					t.Errorf("%s: Content-Range %q, want %q", tc.rng, got, want)
				}
				if !bytes.Equal(body, data[tc.from:tc.to+1]) {
					t.Errorf("%s: %d bytes, not the file's %d-%d", tc.rng, len(body), tc.from, tc.to)
				}
				corsGET(resp)
			}

			// Beyond the end: 416 naming the size, still readable by the page.
			resp, _ = do(http.MethodGet, file, "Range", fmt.Sprintf("bytes=%d-", size))
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("beyond the end: %s, want 416", resp.Status)
			}
			if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", size); got != want {
				t.Errorf("beyond the end: Content-Range %q, want %q", got, want)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("416: Access-Control-Allow-Origin %q, want *", got)
			}

			// Several ranges in one request: the whole file, not a multipart answer.
			resp, body := do(http.MethodGet, file, "Range", "bytes=0-0,10-10,20-20")
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Errorf("3 ranges: %s %s, %d bytes, want 200 with the whole file", resp.Status, resp.Header.Get("Content-Type"), len(body))
			}

			// The rest of the site is untouched.
			for _, u := range []string{s.URL + "/other/page.txt", s.URL + "/top.txt"} {
				for _, m := range []string{http.MethodGet, http.MethodOptions} {
					resp, _ := do(m, u, "Range", "bytes=0-3", "Access-Control-Request-Method", "GET",
						"Access-Control-Request-Headers", "range")
					for k := range resp.Header {
						if strings.HasPrefix(strings.ToLower(k), "access-control-") {
							t.Errorf("%s %s outside the web seed's location: %s: %s", m, u, k, resp.Header.Get(k))
						}
					}
				}
			}
		})
	}
}
