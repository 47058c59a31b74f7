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
