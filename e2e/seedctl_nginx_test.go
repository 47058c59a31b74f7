package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// scStartNginx serves docroot with a real nginx on a free loopback port and returns the site
// URL. With torrentType, the shipped nginx-conf/webswarm-http.conf is included (it adds the
// .torrent MIME type, which Debian's mime.types lacks).
func scStartNginx(t *testing.T, docroot string, torrentType bool) string {
	t.Helper()
	nginx := testenv.Require(t, "nginx", "nginx")
	dir := t.TempDir()
	for _, d := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	include := ""
	if torrentType {
		snippet := filepath.Join(testenv.RepoRoot(t), "nginx-conf", "webswarm-http.conf")
		if _, err := os.Stat(snippet); err != nil {
			t.Fatalf("shipped nginx snippet: %v", err)
		}
		include = "include " + snippet + ";"
	}
	port := testenv.FreePort(t, "127.0.0.1")
	conf := fmt.Sprintf(`worker_processes 1;
user root root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    %[2]s
    default_type application/octet-stream;
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen 127.0.0.1:%[3]d;
        root %[4]s;
    }
}
`, dir, include, port, docroot)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, nginx, "-p", dir+"/", "-c", cf, "-g", "daemon off;")
	site := "http://127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitFor(t, 10*time.Second, "nginx to answer", func() error {
		resp, err := http.Get(site + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return site
}

// TestSeedctlPublishNginx: publish against a real nginx serving the document root: Range
// requests answered with 206, the .torrent served as application/x-bittorrent thanks to the
// shipped snippet (and a warning without it), and libtorrent downloading through nginx as
// web seed.
func TestSeedctlPublishNginx(t *testing.T) {
	script := scRequireLibtorrent(t)
	docroot := t.TempDir()
	os.Chmod(docroot, 0o755)
	file := filepath.Join(docroot, "downloads", "big file #1.iso")
	scWriteFile(t, file, 3<<20)
	site := scStartNginx(t, docroot, true)
	r := scSeedctl(t, "", "publish", file, "--site", site, "--docroot", docroot, "--json", "--piece-size", "64KiB")
	var j struct {
		scMade
		Warnings []string `json:"warnings"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &j) != nil {
		t.Fatalf("publish: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if len(j.Warnings) != 0 || j.WebSeed != site+"/downloads/big%20file%20%231.iso" {
		t.Fatalf("nginx: web seed %s, warnings %v", j.WebSeed, j.Warnings)
	}
	got := t.TempDir()
	lr := scRunProgram(t, "", 2*time.Minute, scPython, script, "get", file+".torrent", got, "90")
	if lr.Code != 0 {
		t.Fatalf("libtorrent through nginx: exit %d\n%s%s", lr.Code, lr.Stdout, lr.Stderr)
	}
	want, _ := os.ReadFile(file)
	if b, err := os.ReadFile(filepath.Join(got, filepath.Base(file))); err != nil || string(b) != string(want) {
		t.Errorf("libtorrent's download through nginx differs (%v)", err)
	}

	// Without the .torrent type, publish says what to add.
	bare := scStartNginx(t, docroot, false)
	r = scSeedctl(t, "", "publish", file, "--site", bare, "--docroot", docroot, "-q", "--force")
	if r.Code != 0 || !strings.Contains(r.Stderr, "not application/x-bittorrent") || strings.Contains(r.Stderr, "Range") {
		t.Errorf("nginx without the torrent type: exit %d, stderr %q", r.Code, r.Stderr)
	}
}
