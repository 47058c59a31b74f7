package storage

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/webswarm/webswarm/internal/testenv"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, n), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, n := range []int{0, 1, 4095, 4096, 70000} {
		p := write("f", n)
		data, st, err := ReadFile(p, 1<<20)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != n || !bytes.Equal(data, bytes.Repeat([]byte{'x'}, n)) {
			t.Errorf("%d bytes: read %d", n, len(data))
		}
		if want := (FileStamp{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}); st != want {
			t.Errorf("%d bytes: stamp %+v, want %+v (os.Stat)", n, st, want)
		}
	}
	if _, _, err := ReadFile(write("limit", 100), 100); err != nil {
		t.Errorf("file of exactly the limit: %v", err)
	}
	if _, _, err := ReadFile(write("over", 101), 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("file over the limit: %v, want ErrTooLarge", err)
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing"), 100); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, _, err := ReadFile(dir, 100); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v, want ErrNotRegular", err)
	}
	if _, _, err := ReadFile("/dev/zero", 100); !errors.Is(err, ErrNotRegular) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("device: %v, want ErrNotRegular", err)
	}
	p := write("noperm", 10)
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if _, _, err := ReadFile(p, 100); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("unreadable file: %v, want fs.ErrPermission", err)
		}
	}
}

// The agent reads a .torrent and a resume record of a few hundred bytes per torrent at
// start-up; compare with os.ReadFile (which os.Stat must accompany for the stamp).
func BenchmarkReadFile(b *testing.B) {
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 400), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("storage.ReadFile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ReadFile(p, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os.ReadFile+Stat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := os.ReadFile(p); err != nil {
				b.Fatal(err)
			}
			if _, err := os.Stat(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A FIFO must be refused at once: opening one for reading blocks until a writer comes, and
// the agent reads every *.torrent it finds.
func TestReadFileFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo.torrent")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	err := testenv.NotBlockedByFIFO(t, p, func() error {
		_, _, err := ReadFile(p, 100)
		return err
	})
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("FIFO: %v, want ErrNotRegular", err)
	}
}
