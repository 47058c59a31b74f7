package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/internal/version"
)

// What a newcomer meets first, run against the built programs: --version, the tracker's
// flag spellings, a port already taken, a mistyped command, an unreachable URL.

func TestNewcomerVersion(t *testing.T) {
	out, code := tpRun(t, "--version")
	if code != 0 || out != "tracker (webswarm) "+version.Version+"\n" {
		t.Errorf("tracker --version: exit %d, output %q; want one line with %s", code, out, version.Version)
	}
	r := scSeedctl(t, t.TempDir(), "--version")
	if r.Code != 0 || r.Stdout != "seedctl (webswarm) "+version.Version+"\n" || r.Stderr != "" {
		t.Errorf("seedctl --version: exit %d, stdout %q, stderr %q; want one line with %s", r.Code, r.Stdout, r.Stderr, version.Version)
	}
}

// TestNewcomerTrackerFlagSpellings: --help writes every flag as --name, and a tracker
// started with -name and --name mixed serves.
func TestNewcomerTrackerFlagSpellings(t *testing.T) {
	out, code := tpRun(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"\n  --port int\n", "\n  --dfile string\n", "\n  --version\n", `(default "tracker-state.bencode")`, "(default 6969)"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, testenv.Tail([]byte(out), 2000))
		}
	}
	if strings.Contains(out, "\n  -port") {
		t.Errorf("--help still spells flags -name:\n%s", testenv.Tail([]byte(out), 2000))
	}

	port := testenv.FreePort(t, "127.0.0.1")
	dir := t.TempDir()
	p := testenv.Start(t, testenv.Build(t, "./tracker"), "-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"-dfile", filepath.Join(dir, "state.bencode"), "--nat_check", "0", "-udp_port", "0", "-logfile", "")
	client := &http.Client{Timeout: 2 * time.Second}
	testenv.WaitFor(t, 15*time.Second, "tracker /healthz with -flag and --flag", func() error {
		if done, err := p.Exited(); done {
			t.Fatalf("tracker exited (%v):\n%s", err, testenv.Tail([]byte(p.Output()), 2000))
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// TestNewcomerPortInUse: every listener whose address is taken stops start-up with the
// flag that moves it.
func TestNewcomerPortInUse(t *testing.T) {
	tcp := func() (net.Listener, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	_, httpPort := tcp()
	_, fcgiPort := tcp()
	uc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	udpPort := strconv.Itoa(uc.LocalAddr().(*net.UDPAddr).Port)
	free := func() string { return strconv.Itoa(testenv.FreePort(t, "127.0.0.1")) }

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", httpPort, "--bind", "127.0.0.1", "--udp_port", "0"}, "choose another address with --port"},
		{[]string{"--port", free(), "--bind", "127.0.0.1", "--udp_port", udpPort}, "choose another address with --udp_port"},
		{[]string{"--port", free(), "--bind", "127.0.0.1", "--udp_port", "0", "--fcgi", "127.0.0.1:" + fcgiPort}, "choose another address with --fcgi"},
	} {
		out, code := tpRun(t, append(tc.args, "--logfile", "")...)
		if code == 0 || !strings.Contains(out, "address already in use") || !strings.Contains(out, tc.want) {
			t.Errorf("tracker %v: exit %d, output %q; want a failure saying %q", tc.args, code, testenv.Tail([]byte(out), 500), tc.want)
		}
	}

	_, peerPort := tcp()
	_, metricsPort := tcp()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--dir", t.TempDir(), "--state", t.TempDir(), "--bind", "127.0.0.1", "--port", peerPort}, "choose another address with --port"},
		{[]string{"agent", "--dir", t.TempDir(), "--state", t.TempDir(), "--bind", "127.0.0.1", "--port", "0", "--metrics", "127.0.0.1:" + metricsPort}, "choose another address with --metrics"},
	} {
		msg := scFails(t, t.TempDir(), 0, "address already in use", tc.args...)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("seedctl %v: %q does not say %q", tc.args, msg, tc.want)
		}
	}
}

// TestNewcomerMissingSocketDirectory: a FastCGI socket in a directory that does not exist
// stops start-up saying which directory to create.
func TestNewcomerMissingSocketDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "webswarm")
	out, code := tpRun(t, "--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")), "--bind", "127.0.0.1",
		"--udp_port", "0", "--logfile", "", "--fcgi", "unix:"+filepath.Join(dir, "tracker.sock"))
	if code == 0 || !strings.Contains(out, "create "+dir+" first") {
		t.Errorf("tracker --fcgi in a missing directory: exit %d, output %q", code, testenv.Tail([]byte(out), 500))
	}
}

// TestNewcomerDidYouMean: cobra's suggestion for a mistyped command stays on its own lines.
func TestNewcomerDidYouMean(t *testing.T) {
	r := scSeedctl(t, t.TempDir(), "publsh", "x")
	want := "seedctl: unknown command \"publsh\" for \"seedctl\"\nDid you mean this?\n\tpublish\n"
	if r.Code == 0 || r.Stderr != want {
		t.Errorf("seedctl publsh: exit %d, stderr %q; want %q", r.Code, r.Stderr, want)
	}
}

// TestNewcomerDialErrorHasNoNil: a refused connection names both ends without "<nil>" for
// the unset local address.
func TestNewcomerDialErrorHasNoNil(t *testing.T) {
	url := fmt.Sprintf("http://127.0.0.1:%d/x.torrent", testenv.FreePort(t, "127.0.0.1"))
	msg := scFails(t, t.TempDir(), 0, "connection refused", "get", url, "--out", t.TempDir(), "--state", t.TempDir())
	if strings.Contains(msg, "<nil>") {
		t.Errorf("seedctl get %s: %q", url, msg)
	}
}
