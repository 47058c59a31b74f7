package e2e

// End-to-end tests of seedctl seed and seedctl get against real BitTorrent clients, all on
// loopback, each client on its own 127.0.0.x (why: clients_test.go): seedctl seeds to aria2, libtorrent,
// Transmission (which never connects out to loopback: seedctl must dial it) and ctorrent;
// aria2 and libtorrent seed to seedctl get; get from a web seed alone (nginx) and with a peer;
// a magnet link; encrypted-only peers; SIGINT and kill -9 with resume. Helpers start with "sp".

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
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

// spTimeout bounds one client download of the small payloads used here.
const spTimeout = 3 * time.Minute

// spStatus is one --json status line of seedctl seed/get.
type spStatus struct {
	State      string  `json:"state"`
	Percent    float64 `json:"percent_done"`
	Uploaded   int64   `json:"uploaded"`
	Downloaded int64   `json:"downloaded"`
	Peers      int     `json:"peers"`
	Tracker    string  `json:"tracker"`
}

// spLastStatus returns the last complete JSON status line seedctl printed.
func spLastStatus(p *testenv.Proc) (spStatus, bool) {
	var last spStatus
	found := false
	sc := bufio.NewScanner(strings.NewReader(p.Output()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var s spStatus
		if json.Unmarshal(line, &s) == nil {
			last, found = s, true
		}
	}
	return last, found
}

// spStartSeedctl starts seedctl (seed or get) with --json status, bound to bindIP on a free
// port, with its state in stateDir; args follow the subcommand.
func spStartSeedctl(t testing.TB, stateDir, bindIP, sub string, args ...string) *testenv.Proc {
	t.Helper()
	p, _ := spStartSeedctlPort(t, stateDir, bindIP, sub, args...)
	return p
}

// spStartSeedctlPort is spStartSeedctl returning the peer port too.
func spStartSeedctlPort(t testing.TB, stateDir, bindIP, sub string, args ...string) (*testenv.Proc, int) {
	t.Helper()
	bin := testenv.Build(t, "./seedctl")
	port := testenv.FreePort(t, bindIP)
	full := append([]string{sub, "--json", "--display-interval", "0.2",
		"--bind", bindIP, "--minport", strconv.Itoa(port), "--maxport", strconv.Itoa(port),
		"--state", stateDir}, args...)
	return testenv.Start(t, bin, full...), port
}

// spWaitState waits until seedctl reports state (e.g. "seeding") and returns that status.
func spWaitState(t testing.TB, p *testenv.Proc, state string, timeout time.Duration) spStatus {
	t.Helper()
	var got spStatus
	testenv.WaitFor(t, timeout, "seedctl state "+state, func() error {
		if done, err := p.Exited(); done {
			t.Fatalf("seedctl exited (%v) before %s:\n%s", err, state, testenv.Tail([]byte(p.Output()), 4000))
		}
		s, ok := spLastStatus(p)
		if !ok || s.State != state {
			return fmt.Errorf("last status %+v", s)
		}
		got = s
		return nil
	})
	return got
}

// spWaitExit waits for seedctl to exit and fails unless it exited 0.
func spWaitExit(t testing.TB, p *testenv.Proc, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("seedctl still running after %v:\n%s", timeout, testenv.Tail([]byte(p.Output()), 4000))
	}
	if _, err := p.Exited(); err != nil {
		t.Fatalf("seedctl: %v:\n%s", err, testenv.Tail([]byte(p.Output()), 4000))
	}
}

// spMultiPayload writes a multi-file payload with awkward names under dir/name and returns
// the files' contents by relative path.
func spMultiPayload(t testing.TB, dir, name string) map[string][]byte {
	t.Helper()
	files := map[string]int{
		"a.bin":                   1<<20 + 17,
		"sub dir/b #1.bin":        300 << 10,
		"sub dir/deeper/c%20.bin": 2<<20 + 5,
		"ü/é.txt":                 4096,
	}
	out := map[string][]byte{}
	for rel, size := range files {
		p := filepath.Join(dir, name, filepath.FromSlash(rel))
		out[rel] = writePayload(t, filepath.Dir(p), filepath.Base(p), size)
	}
	return out
}

// spSameTree fails unless dir/name holds exactly want.
func spSameTree(t testing.TB, dir, name string, want map[string][]byte) {
	t.Helper()
	for rel, data := range want {
		sameFile(t, filepath.Join(dir, name, filepath.FromSlash(rel)), data)
	}
}

// spTransmission is a transmission-daemon started for one download.
type spTransmission struct {
	proc   *testenv.Proc
	remote []string // transmission-remote command prefix
}

// spStartTransmission starts transmission-daemon 3.00 on bindIP with DHT, LPD, PEX, uTP and
// port forwarding off, adds torrentPath downloading into outDir, and returns the daemon.
// Transmission never connects out to loopback peers: the seeder must dial it.
func spStartTransmission(t testing.TB, torrentPath, outDir, bindIP string) *spTransmission {
	t.Helper()
	daemon := testenv.Require(t, "transmission-daemon", "transmission-daemon")
	remote := testenv.Require(t, "transmission-remote", "transmission-cli")
	work := t.TempDir()
	peerPort := testenv.FreePort(t, bindIP)
	rpcPort := testenv.FreePort(t, "127.0.0.1")
	settings := map[string]any{
		"bind-address-ipv4": bindIP, "bind-address-ipv6": "::1",
		"blocklist-enabled": false, "dht-enabled": false, "lpd-enabled": false,
		"pex-enabled": false, "utp-enabled": false, "port-forwarding-enabled": false,
		"peer-port": peerPort, "peer-port-random-on-start": false,
		"peer-limit-per-torrent": 100, "encryption": 1,
		"download-dir": outDir, "incomplete-dir-enabled": false, "rename-partial-files": false,
		"start-added-torrents": true, "ratio-limit-enabled": false,
		"idle-seeding-limit-enabled": false, "speed-limit-up-enabled": false,
		"speed-limit-down-enabled": false, "alt-speed-enabled": false,
		"rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": rpcPort,
		"rpc-authentication-required": false, "rpc-whitelist-enabled": true,
		"rpc-whitelist": "127.0.0.1", "rpc-host-whitelist-enabled": false,
		"message-level": 2, "watch-dir-enabled": false,
	}
	b, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := &spTransmission{
		proc:   testenv.Start(t, daemon, "-f", "-g", work),
		remote: []string{remote, "127.0.0.1:" + strconv.Itoa(rpcPort)},
	}
	testenv.WaitFor(t, 20*time.Second, "transmission RPC", func() error {
		_, err := tr.run("-l")
		return err
	})
	if out, err := tr.run("-a", torrentPath, "-w", outDir); err != nil {
		t.Fatalf("transmission-remote -a: %v: %s", err, out)
	}
	return tr
}

func (tr *spTransmission) run(args ...string) (string, error) {
	cmd := exec.Command(tr.remote[0], append(tr.remote[1:], args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitComplete waits until Transmission reports the torrent 100 % done (it verified every
// piece).
func (tr *spTransmission) waitComplete(t testing.TB, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, "transmission download", func() error {
		out, err := tr.run("-t", "1", "-i")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(out, "Percent Done: 100%") {
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "Percent Done") || strings.Contains(l, "State:") {
					err = fmt.Errorf("%s %v", strings.TrimSpace(l), err)
				}
			}
			return fmt.Errorf("not complete: %v", err)
		}
		return nil
	})
}

// spHandedOut reports whether the tracker gives out peer addr ("ip:port") for ih.
func spHandedOut(t testing.TB, tp *trackerProc, ih [20]byte, addr string) bool {
	t.Helper()
	const probe = "-XX0001-spcheck00000"
	r, err := announce(tp.Announce, announceQuery(ih, probe, 1, 100, "numwant=200"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := announce(tp.Announce, announceQuery(ih, probe, 1, 100, "event=stopped")); err != nil {
		t.Fatal(err)
	}
	peers, err := compactPeers(r.Peers)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p == addr {
			return true
		}
	}
	return false
}

// TestSeedctlSeedsRealClients: one seedctl seed serves aria2, libtorrent, Transmission and
// ctorrent at once, each on its own address; every download's bytes are verified. Then
// SIGINT: seedctl announces stopped (the tracker forgets the seeder), saves a clean resume
// record and exits 0; a restart with --check fast trusts it.
func TestSeedctlSeedsRealClients(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	payload := writePayload(t, src, "payload.bin", 5<<20+123)
	torrent := makeTorrent(t, filepath.Join(src, "payload.bin"), tp.Announce)
	state := t.TempDir()

	seeder, seederPort := spStartSeedctlPort(t, state, "127.0.0.2", "seed", torrent, "--data", src, "--min-peers", "20")
	spWaitState(t, seeder, "seeding", time.Minute)

	// Transmission first and alone: it never connects out to a loopback peer, so the
	// download proves that seedctl dialled it (after seeing it in a tracker reply).
	trDir := t.TempDir()
	tr := spStartTransmission(t, torrent, trDir, "127.0.0.6")
	tr.waitComplete(t, spTimeout)
	sameFile(t, filepath.Join(trDir, "payload.bin"), payload)

	// Then ctorrent, aria2 and libtorrent at once (they may also trade among themselves).
	ariaDir, ltDir, ctDir := t.TempDir(), t.TempDir(), t.TempDir()
	ct, _ := startCtorrent(t, torrent, ctDir, "127.0.0.5")
	aria2Get(t, torrent, ariaDir, "127.0.0.3", spTimeout)
	sameFile(t, filepath.Join(ariaDir, "payload.bin"), payload)
	libtorrentGet(t, torrent, ltDir, "127.0.0.4", spTimeout)
	sameFile(t, filepath.Join(ltDir, "payload.bin"), payload)
	testenv.WaitFor(t, spTimeout, "ctorrent download", func() error {
		if done, err := ct.Exited(); done {
			t.Fatalf("ctorrent exited: %v\n%s", err, testenv.Tail([]byte(ct.Output()), 3000))
		}
		got, err := os.ReadFile(filepath.Join(ctDir, "payload.bin"))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, payload) {
			return fmt.Errorf("%d bytes, not yet equal", len(got))
		}
		return nil
	})

	// Transmission's copy came from seedctl alone; the others may have traded among
	// themselves, so at least one more copy's worth is the honest floor.
	st, _ := spLastStatus(seeder)
	if st.Uploaded < 2*int64(len(payload)) {
		t.Errorf("seedctl reports %d bytes uploaded, want at least 2 × %d", st.Uploaded, len(payload))
	}

	ih := readTorrent(t, torrent).InfoHash
	me := fmt.Sprintf("127.0.0.2:%d", seederPort)
	if !spHandedOut(t, tp, ih, me) {
		t.Fatalf("tracker does not hand out the running seeder %s", me)
	}

	// SIGINT: stopped reaches the tracker, exit 0.
	if err := seeder.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	spWaitExit(t, seeder, 30*time.Second)
	if spHandedOut(t, tp, ih, me) {
		t.Errorf("tracker still hands out the stopped seeder %s", me)
	}

	// A restart trusts the clean resume record: seeding at once, no full re-hash needed.
	again := spStartSeedctl(t, state, "127.0.0.2", "seed", torrent, "--data", src, "--check", "fast")
	spWaitState(t, again, "seeding", 30*time.Second)
}

// TestSeedctlGetFromRealSeeders: aria2 and libtorrent seed, seedctl get downloads a
// multi-file payload with awkward names, verifies it and exits (--exit-on-complete).
func TestSeedctlGetFromRealSeeders(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	want := spMultiPayload(t, src, "tree")
	torrent := makeTorrent(t, filepath.Join(src, "tree"), tp.Announce)

	for _, tc := range []struct {
		name  string
		start func() *testenv.Proc
	}{
		{"aria2", func() *testenv.Proc { return startAria2Seed(t, torrent, src, "127.0.0.2") }},
		{"libtorrent", func() *testenv.Proc { return startLibtorrentSeed(t, torrent, src, "127.0.0.3") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := tc.start()
			defer seed.Stop(10 * time.Second)
			out := t.TempDir()
			get := spStartSeedctl(t, t.TempDir(), "127.0.0.4", "get", torrent, "--out", out, "--exit-on-complete")
			spWaitExit(t, get, spTimeout)
			spSameTree(t, out, "tree", want)
			st, ok := spLastStatus(get)
			if !ok || st.Percent != 100 {
				t.Errorf("last status %+v, want 100 %% done", st)
			}
		})
	}
}

// TestSeedctlGetMagnet: a magnet link with tr= against a libtorrent seeder: the metadata
// comes from the peer (BEP 9), then the payload; verified.
func TestSeedctlGetMagnet(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	payload := writePayload(t, src, "m.bin", 3<<20+7)
	torrent := makeTorrent(t, filepath.Join(src, "m.bin"), tp.Announce)
	startLibtorrentSeed(t, torrent, src, "127.0.0.2")
	ih := readTorrent(t, torrent).InfoHash
	magnet := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=m.bin&tr=%s", ih, url.QueryEscape(tp.Announce))
	out := t.TempDir()
	get := spStartSeedctl(t, t.TempDir(), "127.0.0.4", "get", magnet, "--out", out, "--exit-on-complete")
	spWaitExit(t, get, spTimeout)
	sameFile(t, filepath.Join(out, "m.bin"), payload)
}

// TestSeedctlEncryptedOnly: aria2 requiring encryption downloads from seedctl, and seedctl
// with --encryption require downloads from an aria2 seeder that requires it too.
func TestSeedctlEncryptedOnly(t *testing.T) {
	aria2c := testenv.Require(t, "aria2c", "aria2")
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	payload := writePayload(t, src, "enc.bin", 2<<20+3)
	torrent := makeTorrent(t, filepath.Join(src, "enc.bin"), tp.Announce)

	t.Run("aria2 gets", func(t *testing.T) {
		state := t.TempDir()
		seeder := spStartSeedctl(t, state, "127.0.0.2", "seed", torrent, "--data", src)
		defer seeder.Stop(10 * time.Second)
		spWaitState(t, seeder, "seeding", time.Minute)
		out := t.TempDir()
		port := testenv.FreePort(t, "127.0.0.3")
		args := append(aria2Args(out, "127.0.0.3", port), "--bt-require-crypto=true",
			"--bt-min-crypto-level=arc4", "--seed-ratio=0.0", "--seed-time=0", torrent)
		waitClient(t, testenv.Start(t, aria2c, args...), "aria2c get (crypto required)", spTimeout)
		sameFile(t, filepath.Join(out, "enc.bin"), payload)
	})
	t.Run("seedctl gets", func(t *testing.T) {
		port := testenv.FreePort(t, "127.0.0.5")
		args := append(aria2Args(src, "127.0.0.5", port), "--check-integrity=true",
			"--bt-seed-unverified=false", "--bt-require-crypto=true", "--bt-min-crypto-level=arc4",
			"--seed-ratio=0.0", "--seed-time=10", torrent)
		seed := testenv.Start(t, aria2c, args...)
		defer seed.Stop(10 * time.Second)
		out := t.TempDir()
		get := spStartSeedctl(t, t.TempDir(), "127.0.0.6", "get", torrent, "--out", out,
			"--exit-on-complete", "--encryption", "require")
		spWaitExit(t, get, spTimeout)
		sameFile(t, filepath.Join(out, "enc.bin"), payload)
	})
}

// TestSeedctlResumeAfterKill: a download rate-capped so that it is still running is killed
// with SIGKILL; the next get resumes (downloads less than the whole payload again) and the
// result is verified.
func TestSeedctlResumeAfterKill(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	payload := writePayload(t, src, "r.bin", 8<<20)
	torrent := makeTorrent(t, filepath.Join(src, "r.bin"), tp.Announce)
	seeder := spStartSeedctl(t, t.TempDir(), "127.0.0.2", "seed", torrent, "--data", src)
	spWaitState(t, seeder, "seeding", time.Minute)

	out, state := t.TempDir(), t.TempDir()
	get := spStartSeedctl(t, state, "127.0.0.3", "get", torrent, "--out", out, "--max-download-rate", "1024")
	var before spStatus
	testenv.WaitFor(t, spTimeout, "a third of the download", func() error {
		s, _ := spLastStatus(get)
		if s.Percent < 33 {
			return fmt.Errorf("%.1f%%", s.Percent)
		}
		before = s
		return nil
	})
	get.Kill()

	again := spStartSeedctl(t, state, "127.0.0.3", "get", torrent, "--out", out, "--exit-on-complete")
	spWaitExit(t, again, spTimeout)
	sameFile(t, filepath.Join(out, "r.bin"), payload)
	// The resume record's totals carry over; what this run fetched is the rest, not all.
	last, _ := spLastStatus(again)
	fetched := last.Downloaded - before.Downloaded
	if fetched >= int64(len(payload)) {
		t.Errorf("second run downloaded %d bytes of %d: nothing resumed (before kill: %.1f%%)", fetched, len(payload), before.Percent)
	}
}

// TestSeedctlPeerBadInput: bad flags and payloads stop seed/get with a one-line error naming
// the problem, and nothing is written.
func TestSeedctlPeerBadInput(t *testing.T) {
	src := t.TempDir()
	writePayload(t, src, "p.bin", 100<<10)
	torrent := makeTorrent(t, filepath.Join(src, "p.bin"), "http://127.0.0.1:1/announce")
	empty := t.TempDir()
	state := t.TempDir()
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--max-uploads", []string{"seed", torrent, "--max-uploads", "0", "--state", state}},
		{"--encryption", []string{"seed", torrent, "--encryption", "maybe", "--state", state}},
		{"--max-connections-per-ip", []string{"seed", torrent, "--max-connections-per-ip", "0", "--state", state}},
		{"--upload-stall-timeout", []string{"get", torrent, "--upload-stall-timeout", "10ms", "--state", state}},
		{"--check", []string{"seed", torrent, "--check", "half", "--state", state}},
		{"--maxport", []string{"seed", torrent, "--minport", "7000", "--maxport", "6999", "--state", state}},
		{"--bind", []string{"seed", torrent, "--bind", "example.org", "--state", state}},
		{"no torrent", []string{"seed", "--state", state}},
		{"p.bin", []string{"seed", torrent, "--data", empty, "--state", state, "--minport", "20000", "--maxport", "20999"}},
		{"not a valid torrent", []string{"get", filepath.Join(src, "p.bin"), "--state", state}},
		{"magnet", []string{"get", "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20), "--state", state}},
	} {
		t.Run(tc.want, func(t *testing.T) {
			scFails(t, "", 0, tc.want, tc.args...)
		})
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("seed wrote into the data directory: %v", ents)
	}
}

// TestSeedctlMainlineWay: the mainline recipe — a .torrent linked from the web server, seeded
// with --url and --saveas (underscore spellings and plain-second intervals as mainline wrote
// them) — serves libtorrent, exports Prometheus metrics, stops on SIGTERM; then the publish
// layout (payload beside its .torrent) seeds with no --data at all.
func TestSeedctlMainlineWay(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, trackerTestArgs...)
	docroot := t.TempDir()
	payload := writePayload(t, docroot, "big.bin", 3<<20+11)
	made := makeTorrent(t, filepath.Join(docroot, "big.bin"), tp.Announce)
	torrent := filepath.Join(docroot, "big.bin.torrent")
	data, err := os.ReadFile(made)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(torrent, data, 0o644); err != nil {
		t.Fatal(err)
	}
	site := scStartNginx(t, docroot, true)
	metricsPort := testenv.FreePort(t, "127.0.0.1")
	state := t.TempDir()
	seeder := spStartSeedctl(t, state, "127.0.0.2", "seed", "--url", site+"/big.bin.torrent",
		"--saveas", filepath.Join(docroot, "big.bin"), "--max_uploads", "4", "--rerequest_interval", "60",
		"--metrics", fmt.Sprintf("127.0.0.1:%d", metricsPort))
	spWaitState(t, seeder, "seeding", time.Minute)

	out := t.TempDir()
	libtorrentGet(t, torrent, out, "127.0.0.4", spTimeout)
	sameFile(t, filepath.Join(out, "big.bin"), payload)

	var uploaded float64
	testenv.WaitFor(t, 10*time.Second, "uploaded bytes in /metrics", func() error {
		body, err := trackerGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "webswarm_seed_uploaded_bytes_total "); ok {
				uploaded, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return err
				}
			}
		}
		if uploaded < float64(len(payload)) {
			return fmt.Errorf("webswarm_seed_uploaded_bytes_total %v", uploaded)
		}
		return nil
	})

	if err := seeder.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	spWaitExit(t, seeder, 30*time.Second)

	// The publish layout: no --data, the payload is beside the .torrent.
	again := spStartSeedctl(t, state, "127.0.0.2", "seed", torrent, "--check", "full")
	spWaitState(t, again, "seeding", time.Minute)
}
