package e2e

// End-to-end tests of seedctl agent with its control CLI: the built binary seeds a directory
// through one port to real clients, publish adds a torrent to it, list/pause/verify/status
// drive it over its unix socket, a second agent on the same state refuses, and SIGTERM
// announces stopped. Helpers start with "ag".

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// agTorrent is one entry of `seedctl list --json`.
type agTorrent struct {
	InfoHash string  `json:"info_hash"`
	Name     string  `json:"name"`
	State    string  `json:"state"`
	Error    string  `json:"error"`
	Uploaded int64   `json:"uploaded"`
	Progress float64 `json:"progress"`
}

// agList runs `seedctl list --json` against the agent of stateDir.
func agList(t testing.TB, stateDir string) ([]agTorrent, error) {
	t.Helper()
	r := scSeedctl(t, "", "list", "--json", "--state", stateDir)
	if r.Code != 0 {
		return nil, fmt.Errorf("list: exit %d: %s", r.Code, r.Stderr)
	}
	var l []agTorrent
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		return nil, fmt.Errorf("list --json: %v: %s", err, r.Stdout)
	}
	return l, nil
}

// agWaitStates waits until the agent lists exactly the torrents of want, by name, in the
// given states.
func agWaitStates(t testing.TB, stateDir string, want map[string]string) []agTorrent {
	t.Helper()
	var got []agTorrent
	testenv.WaitFor(t, time.Minute, fmt.Sprintf("agent states %v", want), func() error {
		l, err := agList(t, stateDir)
		if err != nil {
			return err
		}
		have := map[string]string{}
		for _, e := range l {
			have[e.Name] = e.State
		}
		if len(have) != len(want) {
			return fmt.Errorf("listed %v", have)
		}
		for n, s := range want {
			if have[n] != s {
				return fmt.Errorf("listed %v", have)
			}
		}
		got = l
		return nil
	})
	return got
}

// agSigterm sends SIGTERM to the agent and waits up to 10 s for a clean exit.
func agSigterm(t testing.TB, agent *testenv.Proc) {
	t.Helper()
	if err := agent.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-agent.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("agent still running 10 s after SIGTERM")
	}
	if _, err := agent.Exited(); err != nil {
		t.Errorf("agent exit: %v", err)
	}
}

func TestAgentWithClientsAndControl(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, trackerTestArgs...)
	docroot := t.TempDir()
	payA := writePayload(t, docroot, "a.bin", 2<<20+5)
	scSeedctlOK(t, "", "make", filepath.Join(docroot, "a.bin"), "-t", tp.Announce, "-o", filepath.Join(docroot, "a.bin.torrent"))
	state := t.TempDir()
	port := testenv.FreePort(t, "127.0.0.2")
	agent := testenv.Start(t, testenv.Build(t, "./seedctl"), "agent", "--dir", docroot, "--state", state,
		"--bind", "127.0.0.2", "--port", strconv.Itoa(port), "--rerequest-interval", "10s")
	agWaitStates(t, state, map[string]string{"a.bin": "seeding"})

	// A second agent on the same state directory refuses, naming the lock.
	second := scSeedctl(t, "", "agent", "--dir", docroot, "--state", state, "--port", "0")
	if second.Code == 0 || !strings.Contains(second.Stderr, "lock") {
		t.Errorf("second agent: exit %d, stderr %q; want a refusal naming the lock", second.Code, second.Stderr)
	}

	// publish adds the new torrent to the running agent.
	payB := writePayload(t, docroot, "b.bin", 1<<20+77)
	site := scStartNginx(t, docroot, true)
	out := scSeedctlOK(t, "", "publish", filepath.Join(docroot, "b.bin"), "--site", site, "--docroot", docroot,
		"--tracker-path", tp.Announce, "--state", state)
	if !strings.Contains(out, "agent:") {
		t.Errorf("publish did not report the agent: %s", out)
	}
	agWaitStates(t, state, map[string]string{"a.bin": "seeding", "b.bin": "seeding"})

	// Real clients fetch both torrents through the agent's one port.
	ltOut := t.TempDir()
	libtorrentGet(t, filepath.Join(docroot, "a.bin.torrent"), ltOut, "127.0.0.4", spTimeout)
	sameFile(t, filepath.Join(ltOut, "a.bin"), payA)
	ariaOut := t.TempDir()
	aria2Get(t, filepath.Join(docroot, "b.bin.torrent"), ariaOut, "127.0.0.3", spTimeout)
	sameFile(t, filepath.Join(ariaOut, "b.bin"), payB)

	// Control: pause, status, verify, resume.
	if r := scSeedctl(t, "", "pause", "b.bin", "--state", state); r.Code != 0 || !strings.Contains(r.Stdout, "paused") {
		t.Fatalf("pause: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	agWaitStates(t, state, map[string]string{"a.bin": "seeding", "b.bin": "paused"})
	st := scSeedctlOK(t, "", "status", "--json", "--state", state)
	var status struct {
		Torrents int            `json:"torrents"`
		ByState  map[string]int `json:"by_state"`
		Uploaded int64          `json:"uploaded"`
	}
	if err := json.Unmarshal([]byte(st), &status); err != nil {
		t.Fatalf("status --json: %v: %s", err, st)
	}
	if status.Torrents != 2 || status.ByState["paused"] != 1 || status.ByState["seeding"] != 1 {
		t.Errorf("status %+v, want 2 torrents, 1 paused, 1 seeding", status)
	}
	// b.bin has a web seed (publish), so aria2 may have fetched it from nginx: only a.bin's
	// bytes must have come from the agent.
	if status.Uploaded < int64(len(payA)) {
		t.Errorf("status says %d bytes uploaded, want at least %d", status.Uploaded, len(payA))
	}
	if r := scSeedctl(t, "", "verify", "a.bin", "--state", state); r.Code != 0 || !strings.Contains(r.Stdout, "re-check") {
		t.Errorf("verify a.bin: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	scSeedctlOK(t, "", "resume", "b.bin", "--state", state)
	agWaitStates(t, state, map[string]string{"a.bin": "seeding", "b.bin": "seeding"})
	if r := scSeedctl(t, "", "pause", "no-such-torrent", "--state", state); r.Code == 0 {
		t.Errorf("pause of an unknown torrent succeeded: %s", r.Stdout)
	}

	// SIGTERM: stopped for every torrent, exit 0 within 10 s, the socket gone.
	ihA := readTorrent(t, filepath.Join(docroot, "a.bin.torrent")).InfoHash
	me := fmt.Sprintf("127.0.0.2:%d", port)
	if !spHandedOut(t, tp, ihA, me) {
		t.Fatalf("tracker does not hand out the agent %s", me)
	}
	agSigterm(t, agent)
	if spHandedOut(t, tp, ihA, me) {
		t.Errorf("tracker still hands out the stopped agent")
	}
	if _, err := os.Stat(filepath.Join(state, "agent.sock")); err == nil {
		t.Errorf("control socket left behind")
	}
}
