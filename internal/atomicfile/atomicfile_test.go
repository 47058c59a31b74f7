package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

var errDiskFull = errors.New("disk full")

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	for _, e := range ents {
		l = append(l, e.Name())
	}
	return l
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for _, content := range []string{"first", "second, longer than the first"} {
		if err := WriteFile(path, []byte(content), Options{Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("content %q, want %q", got, content)
		}
		if l := names(t, dir); !slices.Equal(l, []string{"state"}) {
			t.Errorf("directory holds %q, want only the file", l)
		}
	}
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	old := []byte("the old content")
	if err := os.WriteFile(path, old, 0o640); err != nil {
		t.Fatal(err)
	}
	err := Write(path, Options{Mode: 0o600}, func(w io.Writer) error {
		w.Write([]byte("half of the new"))
		return errDiskFull
	})
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("Write = %v, want the writer's error wrapped", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Errorf("old file replaced by a failed write: %q", got)
	}
	if l := names(t, dir); !slices.Equal(l, []string{"state"}) {
		t.Errorf("temporary file left behind: %q", l)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("failed write changed the mode to %v", st.Mode().Perm())
	}
}

func TestMode(t *testing.T) {
	old := syscall.Umask(0o077) // Mode is exact: the umask does not narrow it
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		existing fs.FileMode // 0: no file before
		o        Options
		want     fs.FileMode
	}{
		{"new file gets Mode", 0, Options{Mode: 0o644}, 0o644},
		{"new file with KeepMode gets Mode", 0, Options{Mode: 0o600, KeepMode: true}, 0o600},
		{"replaced file gets Mode", 0o640, Options{Mode: 0o644}, 0o644},
		{"KeepMode keeps the old mode", 0o640, Options{Mode: 0o600, KeepMode: true}, 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), tc.o); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.want {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tc.want)
			}
		})
	}
}

func TestNoReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.torrent")
	if err := WriteFile(path, []byte("first"), Options{Mode: 0o644, NoReplace: true}); err != nil {
		t.Fatalf("NoReplace refused a new file: %v", err)
	}
	err := WriteFile(path, []byte("second"), Options{Mode: 0o644, NoReplace: true})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("NoReplace over an existing file = %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("NoReplace replaced the file: %q", got)
	}
	// A dangling symbolic link is a name taken too: the link would be followed by others.
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("x"), Options{Mode: 0o644, NoReplace: true}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("NoReplace over a dangling link = %v, want fs.ErrExist", err)
	}
	if l := names(t, dir); !slices.Equal(l, []string{"dangling", "x.torrent"}) {
		t.Errorf("directory holds %q", l)
	}
}

func TestRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, sub} {
		err := WriteFile(path, []byte("x"), Options{Mode: 0o600})
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Write over %s = %v, want it refused", filepath.Base(path), err)
		}
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode().Type() != fs.ModeNamedPipe {
		t.Errorf("the FIFO was replaced: %v, %v", st, err)
	}
	if l := names(t, dir); !slices.Equal(l, []string{"fifo", "sub"}) {
		t.Errorf("directory holds %q", l)
	}
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "state")
	if err := WriteFile(path, []byte("x"), Options{Mode: 0o600}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Write into a missing directory = %v, want an error naming %s", err, path)
	}
	if err := CheckDir(path); err == nil || !strings.Contains(err.Error(), filepath.Dir(path)) {
		t.Errorf("CheckDir = %v, want an error naming the directory", err)
	}
	if err := CheckDir(filepath.Join(t.TempDir(), "state")); err != nil {
		t.Errorf("CheckDir of a writable directory = %v", err)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	stale := []string{".state.tmp-123456", ".state.tmp-9"}
	kept := []string{".state.tmp-", ".state.tmp-12x", ".other.tmp-123", "state.tmp-1", ".state.tmp-1.bak", "state"}
	for _, n := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".state.tmp-77"), 0o700); err != nil { // not a file: not ours
		t.Fatal(err)
	}
	kept = append(kept, ".state.tmp-77")
	n, err := RemoveStale(filepath.Join(dir, "state"))
	if err != nil || n != len(stale) {
		t.Errorf("RemoveStale = %d, %v; want %d, nil", n, err, len(stale))
	}
	slices.Sort(kept)
	if l := names(t, dir); !slices.Equal(l, kept) {
		t.Errorf("left %q, want %q", l, kept)
	}
}

// crashHelperEnv names the file TestCrashMidWrite's child process writes to.
const crashHelperEnv = "ATOMICFILE_CRASH_PATH"

// TestCrashMidWriteHelper is the child of TestCrashMidWrite: it writes half of the new
// content, says so on stdout, and waits to be killed.
func TestCrashMidWriteHelper(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		t.Skip("the child process of TestCrashMidWrite")
	}
	_ = Write(path, Options{Mode: 0o600}, func(w io.Writer) error {
		if _, err := w.Write([]byte("half of the new")); err != nil {
			return err
		}
		os.Stdout.WriteString("HALF\n")
		select {} // killed here
	})
}

// TestCrashMidWrite kills (SIGKILL) a process in the middle of a Write: the old file is
// intact, and the temporary file left behind is what RemoveStale removes.
func TestCrashMidWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	old := []byte("the old content")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidWriteHelper$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
	child := testenv.StartCmd(t, cmd)
	testenv.WaitFor(t, 30*time.Second, "the child to write half", func() error {
		if !strings.Contains(child.Output(), "HALF") {
			return errors.New("not yet")
		}
		return nil
	})
	if exited, err := child.Exited(); exited {
		t.Fatalf("the child ended before it was killed: %v\n%s", err, child.Output())
	}
	child.Kill()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Errorf("old file changed by a write killed halfway: %q", got)
	}
	l := names(t, dir)
	if len(l) != 2 || !strings.HasPrefix(l[0], TempPrefix("state")) {
		t.Fatalf("directory holds %q, want the file and one temporary file", l)
	}
	if n, err := RemoveStale(path); n != 1 || err != nil {
		t.Errorf("RemoveStale = %d, %v; want 1, nil", n, err)
	}
	if l := names(t, dir); !slices.Equal(l, []string{"state"}) {
		t.Errorf("after RemoveStale the directory holds %q", l)
	}
}
