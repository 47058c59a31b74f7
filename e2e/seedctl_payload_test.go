package e2e

// End-to-end tests of a payload changed under seedctl while it seeds (issue 12 item 4): the
// admin's moves (cp over the file, truncate, delete, rename a new file over it) against
// the built seedctl seed and seedctl agent. Asserted from the seeder's side: the metric and
// the log say so, the status leaves "seeding 100 %", the pieces still matching are served
// again, and a restart's fast check does not trust the changed file. Helpers start with
// "pc".

import (
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

// pcSize is the payload: 64 pieces of 32 KiB (mktorrent -l 15).
const pcSize = 64 << 15

// pcEdit is one way an admin changes the payload at path; want is the kind counted
// (webswarm_seed_payload_changes_total{kind}) and good the pieces that still match after.
type pcEdit struct {
	name string
	edit func(t *testing.T, path string, orig []byte)
	kind string
	good int
}

// pcChanged is the payload with bytes changed in pieces 10 and 11.
func pcChanged(orig []byte) []byte {
	b := append([]byte(nil), orig...)
	for i := 10 << 15; i < 10<<15+40000; i += 4096 {
		b[i] ^= 0x5a
	}
	return b
}

var pcEdits = []pcEdit{
	{"cp over it", func(t *testing.T, path string, orig []byte) {
		tmp := filepath.Join(t.TempDir(), "new.iso")
		if err := os.WriteFile(tmp, pcChanged(orig), 0o644); err != nil {
			t.Fatal(err)
		}
		// cp truncates and writes the same inode, as an admin's copy does.
		if out, err := exec.Command("cp", tmp, path).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
	}, "modified", 62},
	{"truncated", func(t *testing.T, path string, _ []byte) {
		if err := os.Truncate(path, 20<<15); err != nil {
			t.Fatal(err)
		}
	}, "truncated", 20},
	{"deleted", func(t *testing.T, path string, _ []byte) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}, "deleted", 0},
	{"renamed over", func(t *testing.T, path string, orig []byte) {
		tmp := path + ".part"
		if err := os.WriteFile(tmp, pcChanged(orig), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}, "replaced", 62},
}

// pcMetric reads one sample of seedctl's /metrics (0 when absent).
func pcMetric(t testing.TB, metricsURL, sample string) float64 {
	t.Helper()
	v, err := monMetric(metricsURL, sample)
	if err != nil && !strings.Contains(err.Error(), "no sample") {
		t.Fatal(err)
	}
	return v
}

// TestSeedctlSeedPayloadChanged: seedctl seed serves a real downloader, then the payload is
// changed in each of the four ways. The seeder must count and log the change, report
// "missing" below 100 % (not "seeding 100 %"), re-hash the file and serve again the pieces
// that still match, and after SIGINT its clean-shutdown record must not let a --check fast
// restart seed the changed file.
func TestSeedctlSeedPayloadChanged(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	for _, e := range pcEdits {
		t.Run(e.name, func(t *testing.T) {
			src := t.TempDir()
			orig := writePayload(t, src, "big.iso", pcSize)
			path := filepath.Join(src, "big.iso")
			torrent := makeTorrent(t, path, tp.Announce)
			state := t.TempDir()
			mport := testenv.FreePort(t, "127.0.0.1")
			metrics := "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"
			seeder := spStartSeedctl(t, state, "127.0.0.2", "seed", torrent, "--data", src,
				"--metrics", "127.0.0.1:"+strconv.Itoa(mport))
			spWaitState(t, seeder, "seeding", time.Minute)

			if e.kind == "modified" {
				// A real downloader first: the seeder serves the file as it was.
				out := t.TempDir()
				get := spStartSeedctl(t, t.TempDir(), "127.0.0.3", "get", torrent, "--out", out, "--exit-on-complete")
				spWaitExit(t, get, spTimeout)
				sameFile(t, filepath.Join(out, "big.iso"), orig)
			}

			e.edit(t, path, orig)
			sample := fmt.Sprintf(`webswarm_seed_payload_changes_total{kind=%q}`, e.kind)
			testenv.WaitFor(t, 30*time.Second, sample, func() error {
				if v := pcMetric(t, metrics, sample); v < 1 {
					return fmt.Errorf("%s = %v", sample, v)
				}
				return nil
			})
			// The file was hashed again: the pieces that still match are served again,
			// the others not; the status says so. (cp truncates, then writes: the seeder
			// may see both, so the counts are at least those of one change.)
			want := 100 * float64(e.good) / 64
			testenv.WaitFor(t, 30*time.Second, "status after the re-check", func() error {
				if done, err := seeder.Exited(); done {
					t.Fatalf("seeder exited: %v", err)
				}
				st, _ := spLastStatus(seeder)
				if st.State != "missing" || st.Percent != want {
					return fmt.Errorf("status %+v, want missing at %.2f %%", st, want)
				}
				return nil
			})
			if g := pcMetric(t, metrics, `webswarm_seed_pieces_rechecked_total{result="good"}`); int(g) < e.good {
				t.Errorf("pieces found good again: %v, want at least %d", g, e.good)
			}
			if b := pcMetric(t, metrics, `webswarm_seed_pieces_rechecked_total{result="bad"}`); int(b) < 64-e.good {
				t.Errorf("pieces found bad: %v, want at least %d", b, 64-e.good)
			}
			if v := pcMetric(t, metrics, "webswarm_seed_pieces_invalidated_total"); v < 64 {
				t.Errorf("pieces invalidated %v, want at least 64", v)
			}
			if out := seeder.Output(); !strings.Contains(out, "payload file changed") || !strings.Contains(out, "change="+e.kind) {
				t.Errorf("no log of the change:\n%s", testenv.Tail([]byte(out), 3000))
			}

			if err := seeder.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			spWaitExit(t, seeder, 30*time.Second)
			// The restart must hash (not trust) the changed file, and refuses to seed a
			// payload that is not whole any more.
			again := spStartSeedctl(t, state, "127.0.0.2", "seed", torrent, "--data", src, "--check", "fast")
			select {
			case <-again.Done():
			case <-time.After(time.Minute):
				t.Fatalf("restart still running:\n%s", testenv.Tail([]byte(again.Output()), 3000))
			}
			if _, err := again.Exited(); err == nil {
				t.Fatalf("restart with --check fast seeded the changed payload:\n%s", testenv.Tail([]byte(again.Output()), 3000))
			}
			if (e.kind == "modified" || e.kind == "replaced") && !strings.Contains(again.Output(), fmt.Sprintf("has %d of 64 pieces", e.good)) {
				t.Errorf("restart did not hash the payload:\n%s", testenv.Tail([]byte(again.Output()), 3000))
			}
		})
	}
}

// pcWaitAgent waits until the agent of stateDir lists name in state with an error
// containing errPart.
func pcWaitAgent(t *testing.T, stateDir, name, state, errPart string) agTorrent {
	t.Helper()
	var got agTorrent
	testenv.WaitFor(t, time.Minute, fmt.Sprintf("%s %s (%q)", name, state, errPart), func() error {
		l, err := agList(t, stateDir)
		if err != nil {
			return err
		}
		for _, e := range l {
			if e.Name == name {
				if e.State != state || !strings.Contains(e.Error, errPart) {
					return fmt.Errorf("%+v", e)
				}
				got = e
				return nil
			}
		}
		return fmt.Errorf("%s not listed: %+v", name, l)
	})
	return got
}

// TestAgentPayloadChanged: seedctl agent seeds two payloads. One is being served (its
// session runs: a real downloader fetched it) when it is copied over; the other is idle
// (no session) when a new file is renamed over it. Both must leave "seeding": the first
// counts and logs the change and reports the pieces that no longer match, the second is
// checked again; after a restart the agent's fast check must not trust either.
func TestAgentPayloadChanged(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	docroot := t.TempDir()
	var orig = map[string][]byte{}
	for _, name := range []string{"served.iso", "idle.iso"} {
		orig[name] = writePayload(t, docroot, name, pcSize)
		tor := makeTorrent(t, filepath.Join(docroot, name), tp.Announce)
		b, err := os.ReadFile(tor)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docroot, name+".torrent"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := t.TempDir()
	port := testenv.FreePort(t, "127.0.0.2")
	mport := testenv.FreePort(t, "127.0.0.1")
	metrics := "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"
	start := func() *testenv.Proc {
		return testenv.Start(t, testenv.Build(t, "./seedctl"), "agent", "--dir", docroot, "--state", state,
			"--bind", "127.0.0.2", "--port", strconv.Itoa(port), "--rerequest-interval", "10s",
			"--metrics", "127.0.0.1:"+strconv.Itoa(mport))
	}
	agent := start()
	agWaitStates(t, state, map[string]string{"served.iso": "seeding", "idle.iso": "seeding"})

	// A real downloader starts served.iso's session and checks the data.
	out := t.TempDir()
	get := spStartSeedctl(t, t.TempDir(), "127.0.0.3", "get", filepath.Join(docroot, "served.iso.torrent"), "--out", out, "--exit-on-complete")
	spWaitExit(t, get, spTimeout)
	sameFile(t, filepath.Join(out, "served.iso"), orig["served.iso"])

	pcEdits[0].edit(t, filepath.Join(docroot, "served.iso"), orig["served.iso"]) // cp over it
	e := pcWaitAgent(t, state, "served.iso", "error", "62 of 64 pieces match")
	if e.Progress != 62.0/64 {
		t.Errorf("served.iso progress %v, want %v", e.Progress, 62.0/64)
	}
	sample := `webswarm_seed_payload_changes_total{kind="modified"}`
	if v := pcMetric(t, metrics, sample); v < 1 {
		t.Errorf("%s = %v", sample, v)
	}
	if g := pcMetric(t, metrics, `webswarm_seed_pieces_rechecked_total{result="good"}`); g < 62 {
		t.Errorf("pieces found good again: %v, want at least 62", g)
	}

	pcEdits[3].edit(t, filepath.Join(docroot, "idle.iso"), orig["idle.iso"]) // renamed over
	pcWaitAgent(t, state, "idle.iso", "error", "62 of 64 pieces good")
	if out := agent.Output(); !strings.Contains(out, "payload file changed") || !strings.Contains(out, "payload changed under an idle torrent") {
		t.Errorf("changes not logged:\n%s", testenv.Tail([]byte(out), 3000))
	}

	// Restart: neither payload is trusted by the fast check.
	if err := agent.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-agent.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("agent still running 10 s after SIGTERM")
	}
	start()
	pcWaitAgent(t, state, "served.iso", "error", "62 of 64 pieces good")
	pcWaitAgent(t, state, "idle.iso", "error", "62 of 64 pieces good")
}
