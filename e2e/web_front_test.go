package e2e

// Front ends for the web tests: real apache2 and nginx started with the self-contained main
// configs in testdata/, which include the shipped httpd-conf/ and nginx-conf/ snippets
// unchanged (only nginx's webswarm-upstreams.conf is generated, with the test's addresses).

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// webPath is one of the four ways a site reaches the tracker.
type webPath struct {
	Name    string // apache-http, apache-fcgi, nginx-http, nginx-fcgi
	Server  string // apache | nginx
	FCGI    bool   // FastCGI, else HTTP reverse proxy
	TCP     bool   // FastCGI over TCP, else on a unix socket
	Snippet string // the shipped mount snippet the site includes
}

var webPaths = []webPath{
	{Name: "apache-http", Server: "apache", Snippet: "webswarm-proxy.conf"},
	{Name: "apache-fcgi", Server: "apache", FCGI: true, Snippet: "webswarm-fcgi.conf"},
	{Name: "nginx-http", Server: "nginx", Snippet: "webswarm-proxy.conf"},
	{Name: "nginx-fcgi", Server: "nginx", FCGI: true, Snippet: "webswarm-fcgi.conf"},
	// FastCGI over TCP: Apache has its own snippet; nginx names the address in its upstream.
	{Name: "apache-fcgi-tcp", Server: "apache", FCGI: true, TCP: true, Snippet: "webswarm-fcgi-tcp.conf"},
	{Name: "nginx-fcgi-tcp", Server: "nginx", FCGI: true, TCP: true, Snippet: "webswarm-fcgi.conf"},
}

// webBackend is where a front end sends the tracker's URLs.
type webBackend struct {
	HTTPAddr   string // host:port of the tracker's HTTP listener
	HTTPAddr2  string // a second instance's (Apache's webswarm-balancer.conf)
	FCGISocket string // path of its FastCGI unix socket
	FCGIAddr   string // host:port of its FastCGI TCP listener (Apache's webswarm-fcgi-tcp.conf)
}

// webFront is a running apache2 or nginx serving Dir/htdocs on 127.0.0.1:Port and [::1]:Port.
type webFront struct {
	Path webPath
	Dir  string
	Port int
	URL  string // http://127.0.0.1:Port
	URL6 string // http://[::1]:Port
	Proc *testenv.Proc
}

// webDir returns a new directory the front end's workers can read (they run as www-data when
// the test runs as root; t.TempDir is 0700), with an empty htdocs/ inside.
func webDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "webswarm-web-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{dir, filepath.Join(dir, "htdocs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// webUser returns the user and group the front end's workers run as: www-data when the test
// runs as root (Apache refuses to serve as root), else the current user.
func webUser(t testing.TB) (string, string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return "www-data", "www-data"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Username, g.Name
}

// webApacheEnv is the environment web-apache.conf reads.
func webApacheEnv(t testing.TB, dir string, port int, snippet string, be webBackend) []string {
	u, g := webUser(t)
	orDummy := func(s, dummy string) string {
		if s == "" {
			return dummy
		}
		return s
	}
	return append(os.Environ(),
		"WS_DIR="+dir,
		fmt.Sprintf("WS_PORT=%d", port),
		"WS_CONF="+filepath.Join(testenv.RepoRoot(t), "httpd-conf"),
		"WS_SNIPPET="+snippet,
		"WS_USER="+u,
		"WS_GROUP="+g,
		"WEBSWARM_TRACKER="+orDummy(be.HTTPAddr, "127.0.0.1:9"),
		"WEBSWARM_TRACKER2="+orDummy(be.HTTPAddr2, "127.0.0.1:9"),
		"WEBSWARM_FCGI_SOCKET="+orDummy(be.FCGISocket, filepath.Join(dir, "none.sock")),
		"WEBSWARM_FCGI="+orDummy(be.FCGIAddr, "127.0.0.1:9"),
	)
}

// webApacheCmd returns the apache2 command for snippet (args appended to -f CONF).
func webApacheCmd(t testing.TB, dir string, port int, snippet string, be webBackend, args ...string) *exec.Cmd {
	t.Helper()
	bin := testenv.Require(t, "apache2", "apache2")
	conf := filepath.Join(testenv.RepoRoot(t), "e2e", "testdata", "web-apache.conf")
	cmd := exec.Command(bin, append([]string{"-f", conf}, args...)...)
	cmd.Env = webApacheEnv(t, dir, port, snippet, be)
	return cmd
}

// webNginxConf renders web-nginx.conf.tmpl and the upstreams file into dir and returns the
// main config's path.
func webNginxConf(t testing.TB, dir string, port int, snippet string, be webBackend) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join(testenv.RepoRoot(t), "e2e", "testdata", "web-nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	u, g := webUser(t)
	var b bytes.Buffer
	err = tmpl.Execute(&b, map[string]any{
		"Dir": dir, "Port": port, "Conf": filepath.Join(testenv.RepoRoot(t), "nginx-conf"),
		"Snippet": snippet, "Workers": 1, "User": u, "Group": g,
	})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr, sock := be.HTTPAddr, be.FCGISocket
	if httpAddr == "" {
		httpAddr = "127.0.0.1:9"
	}
	if sock == "" {
		sock = filepath.Join(dir, "none.sock")
	}
	// The one file an admin edits, written as the shipped one is, with the test's addresses.
	fcgiServer := "unix:" + sock
	if be.FCGIAddr != "" {
		fcgiServer = be.FCGIAddr
	}
	up := fmt.Sprintf("upstream webswarm_http {\n    server %s;\n    keepalive 32;\n}\n"+
		"upstream webswarm_fcgi {\n    server %s;\n    keepalive 32;\n}\n", httpAddr, fcgiServer)
	if err := os.WriteFile(filepath.Join(dir, "webswarm-upstreams.conf"), []byte(up), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// webNginxCmd returns the nginx command for the config rendered in dir.
func webNginxCmd(t testing.TB, dir, conf string, args ...string) *exec.Cmd {
	t.Helper()
	bin := testenv.Require(t, "nginx", "nginx")
	return exec.Command(bin, append([]string{"-p", dir + "/", "-c", conf}, args...)...)
}

// webStartFront starts the front end of path p in dir (from webDir), pointing at be, and waits
// until it accepts connections.
func webStartFront(t testing.TB, p webPath, dir string, be webBackend) *webFront {
	t.Helper()
	port := webFreePort(t)
	var cmd *exec.Cmd
	switch p.Server {
	case "apache":
		cmd = webApacheCmd(t, dir, port, p.Snippet, be, "-DFOREGROUND")
	case "nginx":
		cmd = webNginxCmd(t, dir, webNginxConf(t, dir, port, p.Snippet, be), "-g", "daemon off;")
	default:
		t.Fatalf("unknown server %q", p.Server)
	}
	return webRunFront(t, p, dir, port, cmd)
}

// webRunFront starts cmd, the front end of path p in dir listening on port, and waits until
// it accepts connections.
func webRunFront(t testing.TB, p webPath, dir string, port int, cmd *exec.Cmd) *webFront {
	t.Helper()
	proc := testenv.StartCmd(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- %s error.log:\n%s", p.Server, testenv.Tail(b, 4000))
		}
	})
	f := &webFront{Path: p, Dir: dir, Port: port, Proc: proc,
		URL: fmt.Sprintf("http://127.0.0.1:%d", port), URL6: fmt.Sprintf("http://[::1]:%d", port)}
	testenv.WaitFor(t, 10*time.Second, p.Server+" to listen", func() error {
		if done, err := proc.Exited(); done {
			return fmt.Errorf("%s exited: %v\n%s", p.Server, err, proc.Output())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
	return f
}

// webFreePort returns a TCP port free on both 127.0.0.1 and ::1 (the front ends listen on
// both).
func webFreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		port := testenv.FreePort(t, "127.0.0.1")
		l, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return 0
}

// webClient returns an HTTP client whose connections come from localIP (127.0.0.2, …), so the
// front end sees a distinct client address. It does not follow redirects.
func webClient(localIP string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true, MaxIdleConnsPerHost: 4},
		Timeout:   15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// webGet fetches url with c and returns the status, headers and body.
func webGet(c *http.Client, url string, header map[string]string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, b.Bytes(), err
}

// webWriteStatic puts a .torrent and a .css under htdocs.
func webWriteStatic(t testing.TB, dir string) {
	t.Helper()
	files := map[string]string{
		"x.torrent": "d8:announce0:4:infod6:lengthi0e4:name1:x12:piece lengthi16384e6:pieces0:ee",
		"style.css": "body { color: black }\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, "htdocs", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// webCheckStatic asserts the MIME types a site keeps and gains.
func webCheckStatic(t *testing.T, f *webFront) {
	t.Helper()
	c := webClient("127.0.0.1")
	for name, want := range map[string]string{"x.torrent": "application/x-bittorrent", "style.css": "text/css"} {
		code, h, _, err := webGet(c, f.URL+"/"+name, nil)
		if err != nil {
			t.Fatalf("GET /%s: %v", name, err)
		}
		if ct := h.Get("Content-Type"); code != 200 || !strings.HasPrefix(ct, want) {
			t.Errorf("GET /%s: %d Content-Type %q, want 200 %s", name, code, ct, want)
		}
	}
}
