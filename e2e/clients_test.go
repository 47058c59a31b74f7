package e2e

// Drivers for real BitTorrent clients, adapted from the project's lab scripts (aria2.sh,
// lt.sh/lt.py, ctorrent.sh): every client listens on and connects from its own loopback
// address (bindIP, 127.0.0.x), DHT/LSD/PEX/UPnP are off so the tracker is the only peer
// source, and each process is bounded and stopped by PID at the end of the test.
//
// Why each client gets its own 127.0.0.x: ctorrent refuses every peer with its
// own IP; Transmission serves one leecher per source IP; and the tracker must be seen to hand
// out the address a peer really connects from.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// systemPython is the interpreter that has Debian's python3-libtorrent; a python3 earlier on
// PATH (pyenv) does not.
const systemPython = "/usr/bin/python3"

// clientScript returns the absolute path of a driver in testdata/clients.
func clientScript(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "clients", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	libtorrentOnce sync.Once
	libtorrentErr  error
)

// requireLibtorrent skips (or, under E2E_REQUIRE=1, fails) the test when the system python
// cannot import libtorrent.
func requireLibtorrent(t testing.TB) {
	t.Helper()
	libtorrentOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, systemPython, "-c", "import libtorrent").CombinedOutput()
		if err != nil {
			libtorrentErr = fmt.Errorf("%s -c 'import libtorrent': %v: %s", systemPython, err, bytes.TrimSpace(out))
		}
	})
	if libtorrentErr != nil {
		testenv.Missing(t, fmt.Sprintf("%v (apt-get install python3-libtorrent, or run scripts/test.sh)", libtorrentErr))
	}
}

// writePayload writes size random bytes to dir/name and returns them.
func writePayload(t testing.TB, dir, name string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// makeTorrent runs mktorrent on payload (a file or directory) with announceURL and 32 KiB
// pieces, writing the .torrent into the test's temporary directory; extra goes to mktorrent
// (e.g. "-w", webSeedURL).
func makeTorrent(t testing.TB, payload, announceURL string, extra ...string) string {
	t.Helper()
	mk := testenv.Require(t, "mktorrent", "mktorrent")
	out := filepath.Join(t.TempDir(), filepath.Base(payload)+".torrent")
	args := append([]string{"-a", announceURL, "-l", "15", "-o", out}, extra...)
	args = append(args, payload)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, mk, args...).CombinedOutput(); err != nil {
		t.Fatalf("mktorrent %v: %v\n%s", args, err, b)
	}
	return out
}

// aria2Args are the options every aria2c run gets (aria2.sh): no DHT, LPD, PEX or IPv6,
// sockets bound to bindIP, short tracker timeouts, no control files or console noise.
func aria2Args(dataDir, bindIP string, port int) []string {
	return []string{
		"--dir=" + dataDir,
		"--listen-port=" + strconv.Itoa(port),
		"--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false",
		"--enable-peer-exchange=false",
		"--disable-ipv6=true",
		"--interface=" + bindIP,
		"--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=10",
		"--file-allocation=none",
		"--auto-save-interval=0",
		"--console-log-level=notice", "--summary-interval=0", "--enable-color=false",
		"--bt-max-peers=0",
	}
}

// startAria2Seed starts aria2c seeding torrentPath from dataDir (which holds the payload under
// the torrent's name) through the torrent's own trackers, listening on and connecting from
// bindIP. aria2 hash-checks the data first and seeds for at most 10 minutes; the test's
// cleanup stops it (SIGTERM: aria2 announces stopped).
func startAria2Seed(t testing.TB, torrentPath, dataDir, bindIP string) *testenv.Proc {
	t.Helper()
	aria2c := testenv.Require(t, "aria2c", "aria2")
	port := testenv.FreePort(t, bindIP)
	args := append(aria2Args(dataDir, bindIP, port),
		"--check-integrity=true", "--bt-seed-unverified=false",
		"--seed-ratio=0.0", "--seed-time=10", torrentPath)
	return testenv.Start(t, aria2c, args...)
}

// aria2Get downloads torrentPath into outDir with aria2c on bindIP through the torrent's own
// trackers; it returns aria2's output once the download is complete (aria2 exits 0 after
// checking every piece), and fails the test on error or after timeout.
func aria2Get(t testing.TB, torrentPath, outDir, bindIP string, timeout time.Duration) string {
	t.Helper()
	aria2c := testenv.Require(t, "aria2c", "aria2")
	port := testenv.FreePort(t, bindIP)
	// seed-time 0.05 min: stay 3 s after completion so that the tracker sees event=completed
	// (with 0, aria2 goes straight from started to stopped).
	args := append(aria2Args(outDir, bindIP, port), "--seed-ratio=0.0", "--seed-time=0.05", torrentPath)
	return waitClient(t, testenv.Start(t, aria2c, args...), "aria2c get", timeout)
}

// libtorrentArgs is the lt.py command line (testdata/clients/lt.py, libtorrent-rasterbar 2.0).
func libtorrentArgs(t testing.TB, mode, torrentPath, dir, bindIP string, port int, seconds time.Duration) []string {
	return []string{clientScript(t, "lt.py"), mode, torrentPath, dir, "-",
		"--port", strconv.Itoa(port), "--ip", bindIP, "--quiet",
		"--seconds", strconv.Itoa(int(seconds.Seconds())), "--seed-after", "2"}
}

// startLibtorrentSeed starts python3-libtorrent seeding torrentPath from dataDir through the
// torrent's own trackers on bindIP, for at most 10 minutes (the test's cleanup stops it).
func startLibtorrentSeed(t testing.TB, torrentPath, dataDir, bindIP string) *testenv.Proc {
	t.Helper()
	requireLibtorrent(t)
	port := testenv.FreePort(t, bindIP)
	return testenv.Start(t, systemPython, libtorrentArgs(t, "seed", torrentPath, dataDir, bindIP, port, 10*time.Minute)...)
}

// libtorrentGet downloads torrentPath into outDir with python3-libtorrent on bindIP through
// the torrent's own trackers. It returns lt.py's output once libtorrent reports the torrent
// complete (every piece hash-checked) and has stayed 2 s more (so event=completed reaches the
// tracker); it fails the test on error or after timeout.
func libtorrentGet(t testing.TB, torrentPath, outDir, bindIP string, timeout time.Duration) string {
	t.Helper()
	requireLibtorrent(t)
	port := testenv.FreePort(t, bindIP)
	p := testenv.Start(t, systemPython, libtorrentArgs(t, "get", torrentPath, outDir, bindIP, port, timeout)...)
	return waitClient(t, p, "libtorrent get", timeout+30*time.Second)
}

// startCtorrent starts Enhanced CTorrent on bindIP (its listen and outgoing sockets, the
// tracker connection included) for torrentPath with dataDir holding the payload under the
// torrent's name: it seeds what is there and downloads what is missing, then seeds for up to
// an hour (the test's cleanup stops it). It returns the process and ctorrent's listen port.
// ctorrent refuses peers with its own IP: never give it the address another client uses.
func startCtorrent(t testing.TB, torrentPath, dataDir, bindIP string) (*testenv.Proc, int) {
	t.Helper()
	ctorrent := testenv.Require(t, "ctorrent", "ctorrent")
	ti := readTorrent(t, torrentPath)
	port := testenv.FreePort(t, bindIP)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// -b: the bitfield file goes to a temp dir, not beside the .torrent; -e 1: seed one hour
	// after completion; -M/-C: peers and cache as in ctorrent.sh.
	args := []string{"-i", bindIP, "-p", strconv.Itoa(port),
		"-s", filepath.Join(dataDir, ti.Name), "-b", filepath.Join(t.TempDir(), "bitfield"),
		"-M", "100", "-C", "32", "-e", "1", torrentPath}
	return testenv.Start(t, ctorrent, args...), port
}

// waitClient waits up to timeout for a client started for one download to exit, and fails
// the test (with its output) unless it exited 0.
func waitClient(t testing.TB, p *testenv.Proc, what string, timeout time.Duration) string {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		p.Stop(5 * time.Second)
		t.Fatalf("%s: not done after %v:\n%s", what, timeout, testenv.Tail([]byte(p.Output()), 4000))
	}
	if _, err := p.Exited(); err != nil {
		t.Fatalf("%s: %v:\n%s", what, err, testenv.Tail([]byte(p.Output()), 4000))
	}
	return p.Output()
}

// sameFile fails the test unless path holds exactly want.
func sameFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d bytes seeded", path, len(got), len(want))
	}
}
