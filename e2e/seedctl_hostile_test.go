package e2e

// End-to-end tests of hostile .torrent files against the built seedctl (issue 12, items 12
// and 13): a FIFO or a link to a device named *.torrent must not block the agent, a huge
// torrent is refused quickly with bounded memory, a refused file is not parsed again at every
// rescan, and show does not pass a torrent's terminal escapes through. Helpers start with
// "ho".

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// hoManyFiles writes a v1 torrent listing n one-byte files (issue 12's torrent of 1M files)
// to path, by hand and streamed, so the test process stays small.
func hoManyFiles(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := bufio.NewWriter(f)
	b.WriteString("d4:infod5:filesl")
	for i := range n {
		p := strconv.FormatInt(int64(i), 36)
		fmt.Fprintf(b, "d6:lengthi1e4:pathl%d:%see", len(p), p)
	}
	pieces := (n + 16383) / 16384
	fmt.Fprintf(b, "e4:name4:many12:piece lengthi16384e6:pieces%d:%see", 20*pieces, strings.Repeat("a", 20*pieces))
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A torrent of 1M files cost 490 MB to show and 888 MB to verify: both now refuse it by its
// file count, before decoding the list.
func TestSeedctlHugeTorrentRefused(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.torrent")
	hoManyFiles(t, huge, 1_000_000)
	st, err := os.Stat(huge)
	if err != nil {
		t.Fatal(err)
	}
	// The refusal peaks near 40 MB (the file is read whole); the decode of 1M files took
	// 490 MB.
	const maxRSS = 100 << 20
	for _, args := range [][]string{
		{"show", huge},
		{"verify", "-q", huge, dir},
	} {
		r := scRunMeasured(t, "", 2*time.Minute, testenv.Build(t, "./seedctl"), args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "1000000 files, more than the limit of 100000") {
			t.Errorf("seedctl %s of %d MB, 1M files: exit %d, stderr %q; want a refusal naming the file limit", args[0], st.Size()>>20, r.Code, r.Stderr)
		}
		if r.MaxRSS > maxRSS {
			t.Errorf("seedctl %s of 1M files: peak RSS %d MiB, want under %d MiB", args[0], r.MaxRSS>>20, maxRSS>>20)
		}
		t.Logf("seedctl %s of %d MB, 1M files: refused, peak RSS %d MiB", args[0], st.Size()>>20, r.MaxRSS>>20)
	}
	// The limit is a flag; a bad value stops start-up naming it.
	scFails(t, "", 0, "--max-torrent-files", "show", "--max-torrent-files", "0", huge)
	scFails(t, "", 0, "--max-torrent-size", "verify", "--max-torrent-size", "lots", huge, dir)
}

// show printed names and comments raw: a torrent could clear the screen, retitle the window
// or hide text. Its human output escapes control characters; --json escapes them too.
func TestSeedctlShowEscapes(t *testing.T) {
	dir := t.TempDir()
	evil := "evil\x1b]0;pwned\x07\x1b[2J\u009b31m\u202egnp.exe"
	data, err := bencode.Marshal(map[string]any{
		"announce": "http://127.0.0.1:1/announce\x1b[8m",
		"comment":  "see \x1b]8;;http://phish.example/\x1b\\here\x1b]8;;\x1b\\",
		"info": map[string]any{"name": evil, "piece length": 16384, "pieces": strings.Repeat("h", 20),
			"files": []any{map[string]any{"length": 10, "path": []string{"sub\x1b[1A", "f\r\n"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "evil.torrent")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := scSeedctlOK(t, "", "show", p)
	if i := strings.IndexAny(out, "\x1b\x07\r\u009b\u202e"); i >= 0 {
		t.Errorf("show printed a raw control character at byte %d:\n%q", i, out)
	}
	for _, want := range []string{`evil\x1b]0;pwned\a\x1b[2J\u009b31m\u202egnp.exe`, `sub\x1b[1A/f\r\n`, `see \x1b]8;;http://phish.example/`} {
		if !strings.Contains(out, want) {
			t.Errorf("show does not print %q:\n%s", want, out)
		}
	}
	if s := scShow(t, p); s.Name != evil {
		t.Errorf("show --json name %q, want %q", s.Name, evil)
	}
	if out := scSeedctlOK(t, "", "show", "--json", p); strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("show --json printed a raw control character:\n%q", out)
	}
}

// A FIFO named *.torrent blocked the agent's main loop in open(): later files were never
// picked up and SIGTERM was ignored. With a FIFO, a link to /dev/zero and a torrent over the
// limits in its directory, the agent seeds a torrent added later, refuses each hostile file
// once (not at every rescan), answers a control API add of the FIFO with an error, and exits
// promptly on SIGTERM.
func TestAgentHostileFiles(t *testing.T) {
	docroot := t.TempDir()
	fifo := filepath.Join(docroot, "fifo.torrent")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(docroot, "zero.torrent")); err != nil {
		t.Fatal(err)
	}
	hoManyFiles(t, filepath.Join(docroot, "many.torrent"), 200_000)
	state := t.TempDir()
	port := testenv.FreePort(t, "127.0.0.2")
	metricsAddr := fmt.Sprintf("127.0.0.2:%d", testenv.FreePort(t, "127.0.0.2"))
	agent := testenv.Start(t, testenv.Build(t, "./seedctl"), "agent", "--dir", docroot, "--state", state,
		"--bind", "127.0.0.2", "--port", strconv.Itoa(port), "--metrics", metricsAddr, "--rescan-interval", "1s")
	metricsURL := "http://" + metricsAddr + "/metrics"
	metric := func(sample string) float64 {
		v, err := monMetric(metricsURL, sample)
		if err != nil {
			return -1
		}
		return v
	}
	refused := func() float64 {
		n := 0.0
		for _, r := range []string{"not_regular", "limit", "unsafe", "malformed", "unreadable"} {
			n += metric(`webswarm_seed_torrent_files_refused_total{reason="` + r + `"}`)
		}
		return n
	}
	// A torrent dropped in after the hostile files is seeded.
	writePayload(t, docroot, "later.bin", 300<<10)
	scSeedctlOK(t, "", "make", filepath.Join(docroot, "later.bin"), "-q", "-o", filepath.Join(docroot, "later.bin.torrent"))
	agWaitStates(t, state, map[string]string{"later.bin": "seeding"})

	// Each hostile file is refused once; the rescans (every second) skip them.
	testenv.WaitFor(t, time.Minute, "refusals of the three hostile files", func() error {
		nr, lim := metric(`webswarm_seed_torrent_files_refused_total{reason="not_regular"}`), metric(`webswarm_seed_torrent_files_refused_total{reason="limit"}`)
		if nr != 2 || lim != 1 {
			return fmt.Errorf("refused not_regular %v, limit %v", nr, lim)
		}
		return nil
	})
	skipped := metric("webswarm_seed_torrent_files_skipped_total")
	testenv.WaitFor(t, time.Minute, "two more rescans", func() error {
		if got := metric("webswarm_seed_torrent_files_skipped_total"); got < skipped+6 {
			return fmt.Errorf("skipped %v, was %v", got, skipped)
		}
		return nil
	})
	if got := refused(); got != 3 {
		t.Errorf("refusals after rescans: %v, want 3 (a refused file read again)", got)
	}
	if got := metric("webswarm_seed_torrent_files_bad"); got != 3 {
		t.Errorf("webswarm_seed_torrent_files_bad = %v, want 3", got)
	}

	// The control API's add of the FIFO is an error, at once.
	r := scSeedctl(t, "", "add", fifo, "--state", state)
	if r.Code == 0 || !strings.Contains(r.Stderr, "not a regular file") {
		t.Errorf("add of a FIFO: exit %d, stderr %q; want an error saying it is not a regular file", r.Code, r.Stderr)
	}

	agSigterm(t, agent)
}

// Metadata fetched for a magnet link (BEP 9) comes from strangers too: it gets the limits of
// a .torrent file. A libtorrent seeder serves the info of a 3-file torrent; seedctl get with
// --max-torrent-files 2 refuses it, naming the limit, instead of downloading.
func TestSeedctlGetMagnetLimits(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	for _, n := range []string{"a.bin", "b.bin", "c.bin"} {
		writePayload(t, filepath.Join(src, "three"), n, 40<<10)
	}
	torrent := makeTorrent(t, filepath.Join(src, "three"), tp.Announce)
	startLibtorrentSeed(t, torrent, src, "127.0.0.2")
	ih := readTorrent(t, torrent).InfoHash
	magnet := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=three&tr=%s", ih, url.QueryEscape(tp.Announce))
	out := t.TempDir()
	get := spStartSeedctl(t, t.TempDir(), "127.0.0.4", "get", magnet, "--out", out, "--exit-on-complete", "--max-torrent-files", "2")
	select {
	case <-get.Done():
	case <-time.After(spTimeout):
		t.Fatalf("seedctl get still running after %v:\n%s", spTimeout, testenv.Tail([]byte(get.Output()), 4000))
	}
	if _, err := get.Exited(); err == nil || !strings.Contains(get.Output(), "3 files, more than the limit of 2") {
		t.Errorf("seedctl get of a 3-file magnet with --max-torrent-files 2: %v, want a refusal naming the limit:\n%s", err, testenv.Tail([]byte(get.Output()), 4000))
	}
	if _, err := os.Stat(filepath.Join(out, "three")); err == nil {
		t.Errorf("the refused torrent's payload was written")
	}
}
