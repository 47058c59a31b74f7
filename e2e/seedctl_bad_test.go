package e2e

import (
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

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// scNoTorrentLeft fails if dir holds any .torrent or temporary file.
func scNoTorrentLeft(t testing.TB, dir string, allowed ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		ok := false
		for _, a := range allowed {
			ok = ok || a == n
		}
		if !ok && (strings.HasSuffix(n, ".torrent") || strings.Contains(n, ".tmp") || strings.Contains(n, "probe")) {
			t.Errorf("left behind: %s", n)
		}
	}
}

// TestSeedctlMakeBadInput: each bad input is a one-line error, a non-zero exit, and no
// .torrent (partial or not) left behind.
func TestSeedctlMakeBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	scWriteFile(t, filepath.Join(dir, "ok.bin"), 5000)
	os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755)
	scWriteFile(t, filepath.Join(dir, "hiddenonly", ".secret"), 10)
	scWriteFile(t, filepath.Join(dir, "fifo", "a.bin"), 10)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	scWriteFile(t, filepath.Join(dir, "dangling", "a.bin"), 10)
	os.Symlink("missing-target", filepath.Join(dir, "dangling", "b.bin"))
	scWriteFile(t, filepath.Join(dir, "loop", "a.bin"), 10)
	os.Symlink(".", filepath.Join(dir, "loop", "again"))
	ok := filepath.Join(dir, "ok.bin")
	o := filepath.Join(out, "x.torrent")
	for _, tc := range []struct {
		name string
		want string
		args []string
	}{
		{"missing", "no such file", []string{"make", filepath.Join(dir, "nope"), "-o", o}},
		{"empty dir", "no files", []string{"make", filepath.Join(dir, "emptydir"), "-o", o}},
		{"hidden only", "no files", []string{"make", filepath.Join(dir, "hiddenonly"), "-o", o}},
		{"fifo", "not a regular file", []string{"make", filepath.Join(dir, "fifo"), "-o", o}},
		{"dangling link", "dangling symbolic link", []string{"make", filepath.Join(dir, "dangling"), "-o", o}},
		{"link loop", "symbolic link loop", []string{"make", filepath.Join(dir, "loop"), "-o", o}},
		{"piece size", "piece size", []string{"make", ok, "-o", o, "--piece-size", "3MiB"}},
		{"piece size small", "piece size", []string{"make", ok, "-o", o, "--piece-size", "8KiB"}},
		{"tracker", "tracker", []string{"make", ok, "-o", o, "-t", "ftp://example.org/"}},
		{"web seed", "web seed", []string{"make", ok, "-o", o, "-w", "example.org/file"}},
		{"two paths no name", "--name", []string{"make", ok, filepath.Join(dir, "fifo"), "-o", o}},
		{"unwritable dir", "cannot write", []string{"make", ok, "-o", filepath.Join(ok, "x.torrent")}},
		{"output is dir", "is a directory", []string{"make", ok, "-o", out}},
		{"no args", "requires at least 1 arg", []string{"make"}},
		{"unknown flag", "unknown flag", []string{"make", ok, "--frobnicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scFails(t, "", 0, tc.want, tc.args...)
			scNoTorrentLeft(t, out)
			scNoTorrentLeft(t, dir)
		})
	}
	t.Run("exists without force", func(t *testing.T) {
		if err := os.WriteFile(o, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		scFails(t, "", 0, "--force", "make", ok, "-o", o)
		if b, _ := os.ReadFile(o); string(b) != "precious" {
			t.Fatalf("existing output overwritten: %q", b)
		}
		scSeedctlOK(t, "", "make", ok, "-o", o, "--force", "-q")
		if s := scShow(t, o); s.Name != "ok.bin" {
			t.Fatalf("forced output: %+v", s)
		}
		scNoTorrentLeft(t, out, "x.torrent")
		os.Remove(o)
	})
	// Permissions: root reads everything, so run seedctl as nobody for these.
	t.Run("unreadable", func(t *testing.T) {
		setpriv, err := exec.LookPath("setpriv")
		if os.Geteuid() != 0 || err != nil {
			t.Skip("needs root and setpriv to run seedctl as another user")
		}
		pub := filepath.Join(os.TempDir(), filepath.Base(dir)+"-perm")
		os.RemoveAll(pub)
		if err := os.MkdirAll(filepath.Join(pub, "payload"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(pub) })
		scWriteFile(t, filepath.Join(pub, "payload", "a.bin"), 100)
		scWriteFile(t, filepath.Join(pub, "payload", "secret.bin"), 100)
		os.Chmod(filepath.Join(pub, "payload", "secret.bin"), 0)
		os.Chmod(pub, 0o755)
		os.MkdirAll(filepath.Join(pub, "ro"), 0o755)
		os.MkdirAll(filepath.Join(pub, "rw"), 0o777)
		os.Chmod(filepath.Join(pub, "rw"), 0o777)
		bin := testenv.Build(t, "./seedctl")
		asNobody := func(args ...string) scResult {
			return scRunProgram(t, "", time.Minute, setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		}
		r := asNobody("make", filepath.Join(pub, "payload"), "-o", filepath.Join(pub, "rw", "p.torrent"))
		if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("unreadable file: exit %d, stderr %q", r.Code, r.Stderr)
		}
		scNoTorrentLeft(t, filepath.Join(pub, "rw"))
		os.Chmod(filepath.Join(pub, "payload", "secret.bin"), 0o644)
		r = asNobody("make", filepath.Join(pub, "payload"), "-o", filepath.Join(pub, "ro", "p.torrent"))
		if r.Code == 0 || !strings.Contains(r.Stderr, "cannot write to output directory") {
			t.Errorf("unwritable output directory: exit %d, stderr %q", r.Code, r.Stderr)
		}
		scNoTorrentLeft(t, filepath.Join(pub, "ro"))
	})
}

// TestSeedctlHostileTorrents: show and verify refuse torrents whose paths would leave the data
// directory, and malformed or absurd ones, with a one-line error (verify: exit 2), and never
// touch a file outside DATA.
func TestSeedctlHostileTorrents(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "x"), 0o755)
	outside := filepath.Join(dir, "escape.txt")
	scWriteFile(t, outside, 10)
	before, _ := os.Stat(outside)
	enc := func(info map[string]any) []byte {
		b, err := bencode.Marshal(map[string]any{"announce": "http://127.0.0.1/announce", "info": info})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	multi := func(path ...string) []byte {
		return enc(map[string]any{"name": "x", "piece length": 16384, "pieces": strings.Repeat("h", 20),
			"files": []any{map[string]any{"length": 10, "path": path}}})
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"dotdot", "unsafe file name", multi("..", "..", "escape.txt")},
		{"absolute", "unsafe file name", multi("/etc/passwd")},
		{"empty component", "unsafe file name", multi("a", "", "b")},
		{"NUL", "unsafe file name", multi("a\x00b")},
		{"name dotdot", "unsafe file name", enc(map[string]any{"name": "..", "piece length": 16384, "pieces": strings.Repeat("h", 20), "length": 10})},
		{"absurd size", "not a valid torrent", enc(map[string]any{"name": "x", "piece length": 16384, "pieces": strings.Repeat("h", 20), "length": int64(1) << 55})},
		{"piece count", "piece hashes", enc(map[string]any{"name": "x", "piece length": 16384, "pieces": strings.Repeat("h", 40), "length": 10})},
		{"deep", "nested deeper", []byte("d4:info" + strings.Repeat("l", 100000) + strings.Repeat("e", 100000) + "e")},
		{"lying length", "runs past the end", []byte("d4:info2000000000:x")},
		{"garbage", "not a valid torrent", []byte("PK\x03\x04 this is a zip")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "hostile.torrent")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			scFails(t, "", 1, tc.want, "show", p)
			scFails(t, "", 2, tc.want, "verify", p, data)
		})
	}
	after, _ := os.Stat(outside)
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != 10 {
		t.Error("the file outside DATA was changed")
	}
	scFails(t, "", 1, "no such file", "show", filepath.Join(dir, "nope.torrent"))
	scFails(t, "", 2, "no such file", "verify", filepath.Join(dir, "nope.torrent"), data)
}

// TestSeedctlMakeInterrupted: SIGINT while hashing stops seedctl with status 130 and leaves
// no .torrent behind.
func TestSeedctlMakeInterrupted(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 30); err != nil { // sparse; far more than the test waits for
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	p := testenv.Start(t, testenv.Build(t, "./seedctl"), "make", big, "-o", filepath.Join(out, "big.torrent"))
	// Hashing has started once the process has read some payload.
	testenv.WaitFor(t, 30*time.Second, "seedctl to read payload", func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.Cmd.Process.Pid))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "rchar: "); ok {
				if n, _ := strconv.ParseInt(v, 10, 64); n > 8<<20 {
					return nil
				}
				return fmt.Errorf("read %s bytes so far", v)
			}
		}
		return errors.New("no rchar in /proc/PID/io")
	})
	if err := p.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("seedctl did not stop within 30 s of SIGINT")
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(p.Output(), "interrupted") {
		t.Errorf("exit %d, output %q", code, p.Output())
	}
	scNoTorrentLeft(t, out)
}
