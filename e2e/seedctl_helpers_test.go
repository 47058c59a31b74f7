package e2e

// Helpers for the seedctl end-to-end tests (seedctl_*_test.go). Every identifier starts with
// "sc" so that other tests in this package can pick any other name.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// scPython is Debian's interpreter, the one that can import python3-libtorrent.
const scPython = "/usr/bin/python3"

// scResult is one seedctl (or other program) run.
type scResult struct {
	Stdout, Stderr string
	Code           int
	// MaxRSS is the program's peak resident memory in bytes, set by scRunMeasured only.
	MaxRSS int64
}

// scRunMeasured is scRunProgram with the program's own peak resident memory in MaxRSS. It
// runs the program under internal/testenv/peakrss: a child this test process starts has the
// test process's peak counted into its ru_maxrss (vfork), which would make the figure depend
// on what other tests did before.
func scRunMeasured(t testing.TB, dir string, timeout time.Duration, name string, args ...string) scResult {
	t.Helper()
	out := filepath.Join(t.TempDir(), "peakrss")
	r := scRunProgram(t, dir, timeout, testenv.Build(t, "./internal/testenv/peakrss"), append([]string{out, name}, args...)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("%s %v: no peak RSS: %v", name, args, err)
	}
	if r.MaxRSS, err = strconv.ParseInt(string(b), 10, 64); err != nil {
		t.Fatalf("%s %v: peak RSS %q: %v", name, args, b, err)
	}
	return r
}

// scRunProgram runs a program to completion with a bound, from dir ("" = the test's cwd).
func scRunProgram(t testing.TB, dir string, timeout time.Duration, name string, args ...string) scResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := scResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after %v", name, args, timeout)
	}
	return r
}

// scSeedctl runs the seedctl binary (built once) in dir.
func scSeedctl(t testing.TB, dir string, args ...string) scResult {
	t.Helper()
	return scRunProgram(t, dir, 2*time.Minute, testenv.Build(t, "./seedctl"), args...)
}

// scSeedctlOK runs seedctl and fails the test unless it exits 0.
func scSeedctlOK(t testing.TB, dir string, args ...string) string {
	t.Helper()
	r := scSeedctl(t, dir, args...)
	if r.Code != 0 {
		t.Fatalf("seedctl %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// scFails runs seedctl, expects exit status code (0 = any non-zero) and a one-line error
// on stderr containing want; returns stderr.
func scFails(t testing.TB, dir string, code int, want string, args ...string) string {
	t.Helper()
	r := scSeedctl(t, dir, args...)
	if r.Code == 0 || (code != 0 && r.Code != code) {
		t.Fatalf("seedctl %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.Code, code, r.Stdout, r.Stderr)
	}
	msg := strings.TrimRight(r.Stderr, "\n")
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "seedctl: ") {
		t.Errorf("seedctl %v: want one line \"seedctl: ...\" on stderr, got %q", args, r.Stderr)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("seedctl %v: stderr %q does not say %q", args, msg, want)
	}
	return msg
}

// scSummary is `seedctl show --json`.
type scSummary struct {
	Name        string     `json:"name"`
	InfoHash    string     `json:"info_hash"`
	InfoHashV2  string     `json:"info_hash_v2"`
	Version     string     `json:"version"`
	TotalLength int64      `json:"total_length"`
	PieceLength int64      `json:"piece_length"`
	Pieces      int        `json:"pieces"`
	Private     bool       `json:"private"`
	Trackers    [][]string `json:"trackers"`
	WebSeeds    []string   `json:"web_seeds"`
	Magnet      string     `json:"magnet"`
	Files       []struct {
		Path   string `json:"path"`
		Length int64  `json:"length"`
	} `json:"files"`
}

func scShow(t testing.TB, torrent string) scSummary {
	t.Helper()
	var s scSummary
	out := scSeedctlOK(t, "", "show", "--json", torrent)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("show --json %s: %v\n%s", torrent, err, out)
	}
	return s
}

// scMade is `seedctl make --json`.
type scMade struct {
	Torrent    string `json:"torrent"`
	InfoHash   string `json:"info_hash"`
	InfoHashV2 string `json:"info_hash_v2"`
	Pieces     int    `json:"pieces"`
	Magnet     string `json:"magnet"`
	TorrentURL string `json:"torrent_url"`
	WebSeed    string `json:"web_seed"`
	Tracker    string `json:"tracker"`
	HTML       string `json:"html"`
}

func scMake(t testing.TB, args ...string) scMade {
	t.Helper()
	var m scMade
	out := scSeedctlOK(t, "", append([]string{"make", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("make --json: %v\n%s", err, out)
	}
	return m
}

// scWriteFile writes size deterministic pseudo-random bytes (seeded by the path's name).
func scWriteFile(t testing.TB, path string, size int) []byte {
	t.Helper()
	var seed [32]byte
	copy(seed[:], filepath.Base(path)+strconv.Itoa(size))
	data := make([]byte, size)
	rand.NewChaCha8(seed).Read(data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// scTree makes a directory whose names exercise ordering and escaping: "a.txt" sorts before
// "a/..." byte-wise ('.' < '/') but after it component-wise; spaces, '#', '%' and non-ASCII;
// an empty file; files shorter and longer than a piece.
func scTree(t testing.TB, root string) {
	t.Helper()
	for name, size := range map[string]int{
		"a.txt":               1000,
		"a/b.bin":             70000,
		"a/c d.bin":           33000,
		"sub/deep/z #1%.bin":  150001,
		"ünïcödé.dat":         40000,
		"empty":               0,
		"zz/last piece.bin":   16385,
		"b-sorted-before.bin": 12345,
	} {
		scWriteFile(t, filepath.Join(root, filepath.FromSlash(name)), size)
	}
}

// scRequireLibtorrent checks that the system python imports libtorrent, and returns the path
// of the test helper script.
func scRequireLibtorrent(t testing.TB) string {
	t.Helper()
	scLTOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, scPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
			scLTErr = errors.New(strings.TrimSpace(string(out)) + ": " + err.Error())
		}
	})
	if scLTErr != nil {
		testenv.Missing(t, scPython+" cannot import libtorrent (apt-get install python3-libtorrent, or run scripts/test.sh): "+scLTErr.Error())
	}
	p, err := filepath.Abs(filepath.Join("testdata", "seedctl_lt.py"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	scLTOnce sync.Once
	scLTErr  error
)

// scLTInfo is what libtorrent says about a torrent.
type scLTInfo struct {
	V1, V2      string
	Name        string
	Pieces      int
	PieceLength int64 `json:"piece_length"`
	Files       []struct {
		Path string
		Size int64
	}
	WebSeeds []string `json:"web_seeds"`
	Trackers []string
	Private  bool
}

func scLibtorrentInfo(t testing.TB, torrent string) scLTInfo {
	t.Helper()
	script := scRequireLibtorrent(t)
	r := scRunProgram(t, "", time.Minute, scPython, script, "info", torrent)
	if r.Code != 0 {
		t.Fatalf("libtorrent cannot load %s: %s%s", torrent, r.Stdout, r.Stderr)
	}
	var li scLTInfo
	if err := json.Unmarshal([]byte(r.Stdout), &li); err != nil {
		t.Fatalf("libtorrent info: %v: %s", err, r.Stdout)
	}
	return li
}

// scServe serves dir over HTTP on a free loopback port (Range supported, .torrent files as
// application/x-bittorrent) until the test ends, and returns the base URL.
func scServe(t testing.TB, dir string, h http.Handler) string {
	t.Helper()
	if h == nil {
		fs := http.FileServer(http.Dir(dir))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, ".torrent") {
				w.Header().Set("Content-Type", "application/x-bittorrent")
			}
			fs.ServeHTTP(w, r)
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + l.Addr().String()
}

// scSameTree fails unless every file under want exists under got with the same bytes.
func scSameTree(t testing.TB, want, got string) {
	t.Helper()
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("downloaded tree lacks %s: %v", rel, err)
			return nil
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after download", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
