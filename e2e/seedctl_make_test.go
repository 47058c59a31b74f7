package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestSeedctlMakeMatchesMktorrent: with the same files, piece size, announce URL (and private
// flag and source), seedctl's v1 info-hash equals mktorrent's, for single and multi-file
// torrents. libtorrent computes the hash of mktorrent's torrent, so neither side grades itself.
func TestSeedctlMakeMatchesMktorrent(t *testing.T) {
	mk := testenv.Require(t, "mktorrent", "mktorrent")
	dir := t.TempDir()
	scWriteFile(t, filepath.Join(dir, "single.iso"), 1<<20+123)
	scTree(t, filepath.Join(dir, "tree"))
	const ann = "http://127.0.0.1:6969/announce"
	for _, tc := range []struct {
		name    string
		payload string
		log2    string
		size    string
		extraMk []string
		extraSc []string
	}{
		{"single-32KiB", "single.iso", "15", "32KiB", nil, nil},
		{"single-256KiB", "single.iso", "18", "256KiB", nil, nil},
		{"single-1MiB", "single.iso", "20", "1MiB", nil, nil},
		{"multi-32KiB", "tree", "15", "32KiB", nil, nil},
		{"multi-64KiB", "tree", "16", "64k", nil, nil},
		{"multi-private-source", "tree", "17", "131072", []string{"-p", "-s", "webswarm"}, []string{"--private", "--source", "webswarm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			mkOut := filepath.Join(out, "mk.torrent")
			args := append([]string{"-a", ann, "-l", tc.log2, "-o", mkOut}, tc.extraMk...)
			r := scRunProgram(t, dir, time.Minute, mk, append(args, tc.payload)...)
			if r.Code != 0 {
				t.Fatalf("mktorrent: %s%s", r.Stdout, r.Stderr)
			}
			scOut := filepath.Join(out, "sc.torrent")
			m := scMake(t, append([]string{"-t", ann, "--piece-size", tc.size, "-q", "-o", scOut, filepath.Join(dir, tc.payload)}, tc.extraSc...)...)
			want := scLibtorrentInfo(t, mkOut)
			if m.InfoHash != want.V1 {
				t.Fatalf("seedctl info-hash %s, mktorrent's %s", m.InfoHash, want.V1)
			}
			// seedctl reads mktorrent's torrent the same way, and verifies the data with it.
			if s := scShow(t, mkOut); s.InfoHash != want.V1 || s.Pieces != want.Pieces {
				t.Errorf("show of mktorrent's torrent: %+v, libtorrent says %s %d pieces", s, want.V1, want.Pieces)
			}
			if got := scSeedctlOK(t, "", "verify", "-q", mkOut, dir); !strings.Contains(got, "OK") {
				t.Errorf("verify of mktorrent's torrent: %s", got)
			}
		})
	}
}

// TestSeedctlMakeReproducible: --no-date output is byte-identical across runs and payload
// locations, and holds no private: 0 and no empty string.
func TestSeedctlMakeReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	scTree(t, filepath.Join(a, "pack"))
	scTree(t, filepath.Join(b, "elsewhere", "pack"))
	outA, outB := filepath.Join(a, "1.torrent"), filepath.Join(b, "2.torrent")
	common := []string{"--no-date", "-t", "http://127.0.0.1:1/announce", "-q"}
	scSeedctlOK(t, "", append([]string{"make", filepath.Join(a, "pack"), "-o", outA}, common...)...)
	scSeedctlOK(t, "", append([]string{"make", filepath.Join(b, "elsewhere", "pack") + "/", "-o", outB, "--workers", "1"}, common...)...)
	x, _ := os.ReadFile(outA)
	y, _ := os.ReadFile(outB)
	if !bytes.Equal(x, y) {
		t.Fatalf("--no-date torrents differ:\n%q\n%q", x, y)
	}
	var top map[string]any
	if err := bencode.Unmarshal(x, &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top["creation date"]; ok {
		t.Error("--no-date torrent has a creation date")
	}
	info := top["info"].(map[string]any)
	if _, ok := info["private"]; ok {
		t.Error("non-private torrent has a private key")
	}
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case string:
			if v == "" {
				t.Errorf("empty string at %s", where)
			}
		case []any:
			for _, e := range v {
				walk(e, where+"[]")
			}
		case map[string]any:
			for k, e := range v {
				if k == "" {
					t.Errorf("empty key in %s", where)
				}
				walk(e, where+"."+k)
			}
		}
	}
	walk(top, "torrent")
	// With a date, the bytes differ only there (and the info-hash stays).
	outC := filepath.Join(a, "3.torrent")
	m := scMake(t, filepath.Join(a, "pack"), "-o", outC, "-t", "http://127.0.0.1:1/announce", "-q")
	if s := scShow(t, outA); s.InfoHash != m.InfoHash {
		t.Errorf("creation date changed the info-hash: %s vs %s", s.InfoHash, m.InfoHash)
	}
}

// TestSeedctlMakeFlags: trackers by tier (',' = same tier), web seeds, names, comments, the
// walk rule (hidden files, --exclude, symlinks) and --under_score flag spellings.
func TestSeedctlMakeFlags(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pack")
	scWriteFile(t, filepath.Join(p, "keep.bin"), 20000)
	scWriteFile(t, filepath.Join(p, ".htaccess"), 10)
	scWriteFile(t, filepath.Join(p, ".git", "HEAD"), 10)
	scWriteFile(t, filepath.Join(p, "skip.tmp"), 10)
	scWriteFile(t, filepath.Join(p, "cache", "x.bin"), 10)
	scWriteFile(t, filepath.Join(dir, "outside", "linked.bin"), 3000)
	if err := os.Symlink(filepath.Join(dir, "outside", "linked.bin"), filepath.Join(p, "link.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "outside"), filepath.Join(p, "linkdir")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "f.torrent")
	scSeedctlOK(t, "", "make", p, "-o", out, "-q",
		"--tracker", "http://a.example/announce,http://b.example/announce", "--tracker", "udp://c.example:6969",
		"--web_seed", "http://w.example/pack/", "-w", "http://x.example/,http://y.example/",
		"--exclude", "*.tmp", "--exclude", "cache", "--piece_size", "16KiB", "--no_date",
		"--name", "renamed", "--comment", "hello", "--created_by", "test")
	s := scShow(t, out)
	want := [][]string{{"http://a.example/announce", "http://b.example/announce"}, {"udp://c.example:6969"}}
	if len(s.Trackers) != 2 || strings.Join(s.Trackers[0], " ") != strings.Join(want[0], " ") || strings.Join(s.Trackers[1], " ") != want[1][0] {
		t.Errorf("trackers %v, want %v", s.Trackers, want)
	}
	if strings.Join(s.WebSeeds, " ") != "http://w.example/pack/ http://x.example/ http://y.example/" {
		t.Errorf("web seeds %v", s.WebSeeds)
	}
	var paths []string
	for _, f := range s.Files {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, " "); got != "renamed/keep.bin renamed/link.bin renamed/linkdir/linked.bin" {
		t.Errorf("files %q: want hidden and excluded files skipped, symlinks followed", got)
	}
	if s.PieceLength != 16384 || s.Name != "renamed" {
		t.Errorf("piece length %d name %q", s.PieceLength, s.Name)
	}
	li := scLibtorrentInfo(t, out)
	if li.V1 != s.InfoHash || len(li.WebSeeds) != 3 || len(li.Trackers) != 3 {
		t.Errorf("libtorrent sees %+v", li)
	}
	// --include-hidden adds them back.
	out2 := filepath.Join(dir, "g.torrent")
	scSeedctlOK(t, "", "make", p, "-o", out2, "-q", "--include-hidden", "--exclude", "*.tmp")
	if n := len(scShow(t, out2).Files); n != 6 {
		t.Errorf("--include-hidden: %d files, want 6", n)
	}
	// Auto piece size: 1,000-2,000 pieces where the bounds allow.
	big := filepath.Join(dir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil { // sparse: hashing zeros is fine here
		t.Fatal(err)
	}
	f.Close()
	m := scMake(t, big, "-o", filepath.Join(dir, "big.torrent"), "-q")
	if m.Pieces < 1000 || m.Pieces > 2000 {
		t.Errorf("auto piece size gave %d pieces for 100 MiB", m.Pieces)
	}
}

// TestSeedctlTransmissionShow: Transmission reads seedctl's torrents and agrees on the hash.
func TestSeedctlTransmissionShow(t *testing.T) {
	ts := testenv.Require(t, "transmission-show", "transmission-cli")
	dir := t.TempDir()
	scWriteFile(t, filepath.Join(dir, "one.bin"), 100000)
	scTree(t, filepath.Join(dir, "tree"))
	for _, payload := range []string{"one.bin", "tree"} {
		out := filepath.Join(dir, payload+".torrent")
		m := scMake(t, filepath.Join(dir, payload), "-o", out, "-q", "-t", "http://127.0.0.1:1/announce", "-w", "http://127.0.0.1:2/")
		cmd := exec.Command(ts, out)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("transmission-show %s: %v\n%s", out, err, b)
		}
		if !strings.Contains(strings.ToLower(string(b)), m.InfoHash) {
			t.Errorf("transmission-show does not show hash %s:\n%s", m.InfoHash, b)
		}
	}
}

// TestSeedctlMakeMemoryBounded: hashing is streamed: making (and verifying) a torrent of a
// 4 GiB file stays under 64 MiB of RSS. The file is sparse, so the test costs CPU, not disk.
func TestSeedctlMakeMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 8 GiB")
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	bin := testenv.Build(t, "./seedctl")
	out := filepath.Join(dir, "big.torrent")
	for _, args := range [][]string{
		{"make", big, "-o", out},
		{"verify", out, dir},
	} {
		r := scRunMeasured(t, "", 2*time.Minute, bin, args...)
		if r.Code != 0 {
			t.Fatalf("seedctl %v: exit %d\n%s", args, r.Code, r.Stderr)
		}
		if rss := r.MaxRSS; rss > 64<<20 {
			t.Errorf("seedctl %s of 4 GiB: max RSS %d MiB, want <= 64", args[0], rss>>20)
		} else {
			t.Logf("seedctl %s of 4 GiB: max RSS %d MiB", args[0], rss>>20)
		}
		// Not a terminal: progress comes as plain lines (if the run took long enough for one).
		for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
			if line != "" && !strings.Contains(line, "% ") && !strings.Contains(line, "of 4 GiB") {
				t.Errorf("unexpected stderr line %q", line)
			}
		}
	}
}

// TestSeedctlProgress: on a terminal (a pty from script(1)) make draws a progress bar that
// ends at 100 %; with --quiet, or --json, or not on a terminal for a short run, stderr stays
// empty.
func TestSeedctlProgress(t *testing.T) {
	script := testenv.Require(t, "script", "bsdutils")
	dir := t.TempDir()
	scWriteFile(t, filepath.Join(dir, "p.bin"), 3<<20)
	bin := testenv.Build(t, "./seedctl")
	cmdline := bin + " make " + filepath.Join(dir, "p.bin") + " -o " + filepath.Join(dir, "tty.torrent")
	r := scRunProgram(t, "", time.Minute, script, "-qec", cmdline, "/dev/null")
	if r.Code != 0 || !strings.Contains(r.Stdout, "hashing 100%") || !strings.Contains(r.Stdout, "wrote ") {
		t.Errorf("on a terminal: exit %d, output %q", r.Code, r.Stdout)
	}
	r = scRunProgram(t, "", time.Minute, script, "-qec", cmdline+" -q -f", "/dev/null")
	if strings.Contains(r.Stdout, "hashing") {
		t.Errorf("--quiet on a terminal still shows progress: %q", r.Stdout)
	}
	for _, extra := range []string{"-q", "--json"} {
		r := scSeedctl(t, "", "make", filepath.Join(dir, "p.bin"), "-f", "-o", filepath.Join(dir, "p.torrent"), extra)
		if r.Code != 0 || r.Stderr != "" {
			t.Errorf("make %s: exit %d, stderr %q", extra, r.Code, r.Stderr)
		}
	}
}
