package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// browserModules returns the node_modules directory scripts/test.sh fills (npm puppeteer-core
// and webtorrent, pinned, installed with --ignore-scripts), or ends the test as a missing
// program does.
func browserModules(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), ".cache", "e2e-node", "node_modules")
	for _, f := range []string{"puppeteer-core/package.json", "webtorrent/dist/webtorrent.min.js"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			testenv.Missing(t, fmt.Sprintf("%s missing (scripts/test.sh installs the npm packages the browser tests use)", filepath.Join(dir, f)))
		}
	}
	return dir
}

// browserResult is what page-download.mjs reads off the page once it says it is done.
type browserResult struct {
	SHA1           string  `json:"sha1"`
	SaveName       string  `json:"saveName"`
	SaveFocused    bool    `json:"saveFocused"`
	FromWebSeed    int64   `json:"fromWebSeed"`
	FromPeers      int64   `json:"fromPeers"`
	Progress       float64 `json:"progress"`
	ProgressText   string  `json:"progressText"`
	Percent        string  `json:"percent"`
	Status         string  `json:"status"`
	ButtonHidden   bool    `json:"buttonHidden"`
	ButtonDisabled bool    `json:"buttonDisabled"`
	Direct         string  `json:"direct"` // the plain link's href
	DirectFocused  bool    `json:"directFocused"`
	Tabs           int     `json:"tabs"`
	Saved          string  `json:"saved"` // Chromium's last download state: completed, canceled
}

// stopGroupFromPIDFile stops the process group of the PID in pidFile, if the file exists:
// puppeteer starts Chromium in a process group of its own, which the driver may not have
// closed.
func stopGroupFromPIDFile(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Logf("stopping chromium %d: %v", pid, err)
		}
	}
}

// browserRun opens pageURL in a fresh headless Chromium, does what mode says (see
// page-download.mjs: download, no-webrtc, press) and returns what the page shows. The browser
// saves the page's Blob download into downloads.
func browserRun(t *testing.T, mode, pageURL, downloads string) browserResult {
	t.Helper()
	chromium := testenv.Require(t, "chromium", "chromium")
	node := testenv.Require(t, "node", "nodejs")
	modules := browserModules(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "chromium.pid")
	t.Cleanup(func() { stopGroupFromPIDFile(t, pidFile) })
	const timeout = 4 * time.Minute // a bound, not a goal: the machine may be busy
	cmd := exec.Command(node, filepath.Join(testenv.RepoRoot(t), "e2e", "testdata", "browser", "page-download.mjs"),
		mode, modules, chromium, pageURL, filepath.Join(dir, "profile"), downloads, pidFile, strconv.Itoa(int(timeout/time.Millisecond)))
	cmd.Env = append(os.Environ(), "HOME="+dir) // Chromium writes under $HOME
	p := testenv.StartCmd(t, cmd)
	select {
	case <-p.Done():
	case <-time.After(timeout + 30*time.Second):
		t.Fatalf("the browser driver still runs after %v", timeout+30*time.Second)
	}
	out := p.Output()
	if _, err := p.Exited(); err != nil {
		t.Fatalf("browser driver: %v\n%s", err, testenv.Tail([]byte(out), 8000))
	}
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "RESULT "); ok {
			var r browserResult
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				t.Fatalf("%v: %s", err, s)
			}
			t.Logf("page reports: %+v", r)
			return r
		}
	}
	t.Fatalf("no RESULT from the browser driver:\n%s", testenv.Tail([]byte(out), 8000))
	return browserResult{}
}

// TestBrowserPageWebSeed: the page `seedctl publish --page` writes, served by a real nginx and
// a real Apache with webswarm-webseed.conf on the published directory, downloads a 32 MiB file
// in a real Chromium (webtorrent 3.x from the site) from the web seed alone, and the SHA-1 the
// page computes of what it hands over — and the file the browser saved — are the file's. The
// page is opened as http://localhost:P, the web seed is http://127.0.0.1:P: another origin,
// so every piece crosses the snippet's CORS rules. No tracker runs: the browser ignores
// the http:// announce URL, and nothing answers the ws:// one.
func TestBrowserPageWebSeed(t *testing.T) {
	browserModules(t)
	testenv.Require(t, "chromium", "chromium")
	seedctl := testenv.Build(t, "./seedctl")
	data := wsdRandom(32 << 20)
	sum := sha1.Sum(data)
	want := hex.EncodeToString(sum[:])
	for _, server := range []string{"nginx", "apache"} {
		t.Run(server, func(t *testing.T) {
			s := wsdStart(t, server)
			htdocs := filepath.Join(s.Dir, "htdocs")
			const name = "big file #1.iso"
			file := filepath.Join(htdocs, "pub", name)
			wsWriteFile(t, file, data)
			bundle, err := os.ReadFile(filepath.Join(browserModules(t), "webtorrent", "dist", "webtorrent.min.js"))
			if err != nil {
				t.Fatal(err)
			}
			wsWriteFile(t, filepath.Join(htdocs, "webtorrent", "webtorrent.min.js"), bundle)

			// With the checks on: the server answers Range, the .torrent type and the bundle.
			r := scRunProgram(t, "", 2*time.Minute, seedctl, "publish", file, "--site", s.URL, "--docroot", htdocs, "--page", "--no-agent")
			if r.Code != 0 || strings.Contains(r.Stderr, "warning") {
				t.Fatalf("publish: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
			}
			if err := os.Chmod(file+".html", 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file+".torrent", 0o644); err != nil {
				t.Fatal(err)
			}

			downloads := t.TempDir()
			pageURL := fmt.Sprintf("http://localhost:%d/pub/big%%20file%%20%%231.iso.html", s.Port)
			res := browserRun(t, "download", pageURL, downloads)
			if res.SHA1 != want {
				t.Errorf("the page's SHA-1 %q, the file's %s", res.SHA1, want)
			}
			if res.FromWebSeed < int64(len(data)) || res.FromPeers != 0 {
				t.Errorf("from the web seed %d bytes, from peers %d: want all %d from the web seed", res.FromWebSeed, res.FromPeers, len(data))
			}
			if res.Progress != 100 || res.ProgressText != "100 %" || res.Percent != "100 %" || !res.ButtonDisabled {
				t.Errorf("progress shown: %+v", res)
			}
			if res.SaveName != name || !res.SaveFocused {
				t.Errorf("save link %q, focused %v", res.SaveName, res.SaveFocused)
			}
			// The Blob download the page started, saved by Chromium under the file's name.
			saved := filepath.Join(downloads, name)
			if b, err := os.ReadFile(saved); res.Saved != "completed" || err != nil {
				t.Errorf("the browser's download: %s, %v", res.Saved, err)
			} else if got := sha1.Sum(b); got != sum {
				t.Errorf("%s: %d bytes, SHA-1 %x, want the file's", saved, len(b), got)
			}
			// Every byte went through the web seed's location, cross-origin.
			acc, err := os.ReadFile(filepath.Join(s.Dir, "access.log"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(acc), "\"GET /pub/big%20file%20%231.iso HTTP/1.1\" 206 ") {
				t.Errorf("no 206 for the web seed in the access log:\n%s", testenv.Tail(acc, 3000))
			}
		})
	}
}

// TestBrowserPageFallback: where the browser cannot download (no WebRTC, or the webtorrent
// bundle is not on the site), the page offers the plain HTTP link instead, and says so.
func TestBrowserPageFallback(t *testing.T) {
	browserModules(t)
	testenv.Require(t, "chromium", "chromium")
	seedctl := testenv.Build(t, "./seedctl")
	s := wsdStart(t, "nginx")
	htdocs := filepath.Join(s.Dir, "htdocs")
	file := filepath.Join(htdocs, "pub", "f.bin")
	wsWriteFile(t, file, wsdRandom(100_000))
	// No bundle under /webtorrent/: publish warns, and the page must cope.
	r := scRunProgram(t, "", 2*time.Minute, seedctl, "publish", file, "--site", s.URL, "--docroot", htdocs, "--page", "--no-agent")
	if r.Code != 0 || !strings.Contains(r.Stderr, "warning: "+s.URL+"/webtorrent/webtorrent.min.js answers 404 Not Found: the download page needs the webtorrent bundle there: npm install --ignore-scripts webtorrent@3") {
		t.Fatalf("publish without the bundle on the site: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if err := os.Chmod(file+".html", 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := s.URL + "/pub/f.bin.html"
	direct := s.URL + "/pub/f.bin"

	res := browserRun(t, "no-webrtc", pageURL, t.TempDir())
	if !res.ButtonHidden || !strings.Contains(res.Status, "no WebRTC") || res.Direct != direct {
		t.Errorf("without WebRTC: button hidden %v, status %q, link %q", res.ButtonHidden, res.Status, res.Direct)
	}
	res = browserRun(t, "press", pageURL, t.TempDir())
	if !strings.Contains(res.Status, "failed") || !res.DirectFocused || res.Direct != direct {
		t.Errorf("without the bundle: status %q, plain link %q focused %v", res.Status, res.Direct, res.DirectFocused)
	}
}
