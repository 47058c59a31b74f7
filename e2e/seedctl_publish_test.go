package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestSeedctlPublish: publish derives the file's URL under the document root (escaping
// spaces, '#', '%' and non-ASCII), writes FILE.torrent beside it with the site's tracker and
// the file's URL as web seed, checks Range support, and prints the magnet link and an HTML
// link. aria2 then downloads the file through that web seed alone.
func TestSeedctlPublish(t *testing.T) {
	aria2 := testenv.Require(t, "aria2c", "aria2")
	docroot := t.TempDir()
	rel := filepath.Join("iso files", "ünï #1 100%.iso")
	file := filepath.Join(docroot, rel)
	want := scWriteFile(t, file, 200000)
	site := scServe(t, docroot, nil)

	r := scSeedctl(t, "", "publish", file, "--site", site+"/", "--docroot", docroot, "-q", "--json")
	if r.Code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var j struct {
		scMade
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &j); err != nil {
		t.Fatalf("%v: %s", err, r.Stdout)
	}
	escaped := "/iso%20files/%C3%BCn%C3%AF%20%231%20100%25.iso"
	if j.WebSeed != site+escaped || j.TorrentURL != site+escaped+".torrent" || j.Tracker != site+"/announce" {
		t.Errorf("web seed %s, torrent URL %s, tracker %s", j.WebSeed, j.TorrentURL, j.Tracker)
	}
	if len(j.Warnings) != 0 {
		t.Errorf("warnings from a server with Range support: %v", j.Warnings)
	}
	if !strings.HasPrefix(j.Magnet, "magnet:?xt=urn:btih:"+j.InfoHash) {
		t.Errorf("magnet %s", j.Magnet)
	}
	if want := `<a href="` + site + escaped + `.torrent" type="application/x-bittorrent">ünï #1 100%.iso</a>`; !strings.HasPrefix(j.HTML, want) {
		t.Errorf("HTML %s, want %s...", j.HTML, want)
	}
	s := scShow(t, file+".torrent")
	if s.Name != "ünï #1 100%.iso" || len(s.WebSeeds) != 1 || s.WebSeeds[0] != j.WebSeed || s.Trackers[0][0] != j.Tracker {
		t.Errorf("torrent: %+v", s)
	}
	// The torrent is served from the site, as application/x-bittorrent.
	resp, err := http.Get(j.TorrentURL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-bittorrent" {
		t.Errorf("GET %s: %s %s", j.TorrentURL, resp.Status, resp.Header.Get("Content-Type"))
	}
	got := t.TempDir()
	ar := scRunProgram(t, "", 2*time.Minute, aria2, "--dir="+got, "--listen-port="+strconv.Itoa(testenv.FreePort(t, "127.0.0.1")),
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--disable-ipv6=true", "--bt-tracker-connect-timeout=2", "--bt-tracker-timeout=2", "--file-allocation=none",
		"--seed-time=0", "--console-log-level=warn", "--summary-interval=0", file+".torrent")
	if ar.Code != 0 {
		t.Fatalf("aria2c: exit %d\n%s%s", ar.Code, ar.Stdout, ar.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(got, filepath.Base(file))); err != nil || string(b) != string(want) {
		t.Errorf("aria2 download through the web seed differs (%v)", err)
	}

	// Text output: the magnet link, the HTML snippet and the allowed_dir note.
	r = scSeedctl(t, "", "publish", file, "--site", site, "--docroot", docroot, "-q", "--force", "--tracker-path", "/tracker/announce")
	for _, w := range []string{"magnet:?xt=urn:btih:", "<a href=", "--allowed_dir " + docroot, site + "/tracker/announce"} {
		if !strings.Contains(r.Stdout, w) {
			t.Errorf("publish output lacks %q:\n%s", w, r.Stdout)
		}
	}
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("publish --force: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestSeedctlPublishWarnings: a server without Range support, a wrong docroot, a missing
// file on the server; each is a warning (the torrent is still written) or an error.
func TestSeedctlPublishWarnings(t *testing.T) {
	docroot := t.TempDir()
	file := filepath.Join(docroot, "f.bin")
	scWriteFile(t, file, 50000)
	noRange := scServe(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(docroot, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b) // 200 and the whole file, whatever the Range header says
	}))
	r := scSeedctl(t, "", "publish", file, "--site", noRange, "--docroot", docroot, "-q")
	if r.Code != 0 || !strings.Contains(r.Stderr, "ignores Range") || !strings.Contains(r.Stderr, "Transmission") {
		t.Errorf("no-Range server: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "not application/x-bittorrent") {
		t.Errorf("wrong .torrent type not reported: %q", r.Stderr)
	}
	if _, err := os.Stat(file + ".torrent"); err != nil {
		t.Errorf("torrent not written after a warning: %v", err)
	}
	// The site does not serve the file where publish expects it (404).
	other := t.TempDir()
	empty := scServe(t, other, nil)
	r = scSeedctl(t, "", "publish", file, "--site", empty, "--docroot", docroot, "-q", "--force")
	if r.Code != 0 || !strings.Contains(r.Stderr, "404") {
		t.Errorf("404: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// A file outside the document root, a bad site URL: errors, nothing written.
	outside := filepath.Join(other, "o.bin")
	scWriteFile(t, outside, 100)
	scFails(t, "", 1, "not under the document root", "publish", outside, "--site", empty, "--docroot", docroot)
	scFails(t, "", 1, "--site", "publish", file, "--site", "example.org", "--docroot", docroot, "--force")
	scFails(t, "", 1, `required flag(s) "site"`, "publish", file)
	if _, err := os.Stat(outside + ".torrent"); err == nil {
		t.Error("torrent written for a file outside the document root")
	}
}

// TestSeedctlPublishDirectory: a directory becomes a multi-file torrent whose web seed is its
// parent directory's URL (BEP 19 appends name/path), and aria2 downloads it from there.
func TestSeedctlPublishDirectory(t *testing.T) {
	aria2 := testenv.Require(t, "aria2c", "aria2")
	docroot := t.TempDir()
	set := filepath.Join(docroot, "pub", "my set")
	scWriteFile(t, filepath.Join(set, "one.bin"), 40000)
	scWriteFile(t, filepath.Join(set, "sub", "two #2.bin"), 70000)
	site := scServe(t, docroot, nil)
	r := scSeedctl(t, "", "publish", set, "--site", site, "--docroot", docroot, "--json")
	if r.Code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var j struct {
		scMade
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &j); err != nil {
		t.Fatal(err)
	}
	if j.WebSeed != site+"/pub/" || j.TorrentURL != site+"/pub/my%20set.torrent" || len(j.Warnings) != 0 {
		t.Fatalf("web seed %s, torrent URL %s, warnings %v", j.WebSeed, j.TorrentURL, j.Warnings)
	}
	got := t.TempDir()
	ar := scRunProgram(t, "", 2*time.Minute, aria2, "--dir="+got, "--listen-port="+strconv.Itoa(testenv.FreePort(t, "127.0.0.1")),
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--disable-ipv6=true", "--bt-tracker-connect-timeout=2", "--bt-tracker-timeout=2", "--file-allocation=none",
		"--seed-time=0", "--console-log-level=warn", "--summary-interval=0", set+".torrent")
	if ar.Code != 0 {
		t.Fatalf("aria2c: exit %d\n%s%s", ar.Code, ar.Stdout, ar.Stderr)
	}
	scSameTree(t, set, filepath.Join(got, "my set"))
}
