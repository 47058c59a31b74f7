package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestChanges edits a payload behind an open Files the ways an admin does (write in place
// keeping the size and mtime, truncate, delete, rename another file over it) and checks
// that each is reported with its kind, that reads never return the new bytes before
// Rebase, and that Stamps keeps vouching for the verified state until then.
func TestChanges(t *testing.T) {
	l := testLayout(t, 1)
	data := stream(l, 3)
	path := func(dir, file string) string { return filepath.Join(dir, "tor", file) }
	cases := []struct {
		name string
		edit func(t *testing.T, p string)
		kind ChangeKind
	}{
		{"in place, same size and mtime", func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			b, _ := os.ReadFile(p)
			b[0] ^= 1
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, st.ModTime(), st.ModTime()) // only ctime tells
		}, Modified},
		{"truncated", func(t *testing.T, p string) {
			if err := os.Truncate(p, 3); err != nil {
				t.Fatal(err)
			}
		}, Truncated},
		{"deleted", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, Deleted},
		{"renamed over", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[1] ^= 1
			tmp := p + ".new"
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}, Replaced},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writePayload(t, l, dir, "tor", data)
			f := openTor(t, l, dir, OpenOptions{MaxOpen: 1})
			before := f.Stamps()
			buf := make([]byte, 4)
			if _, err := f.ReadAt(buf, l.Files[3].Offset); err != nil { // dir/b cached
				t.Fatal(err)
			}
			if ch, err := f.Changes(nil); err != nil || len(ch) != 0 {
				t.Fatalf("Changes of an untouched payload = %v, %v", ch, err)
			}
			c.edit(t, path(dir, "dir/b"))
			// Another file read evicts dir/b's handle (MaxOpen 1): reopening must notice.
			if _, err := f.ReadAt(buf, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadAt(buf, l.Files[3].Offset); err == nil {
				t.Fatalf("read of the changed file succeeded: %x", buf)
			} else if c.kind != Deleted && !errors.Is(err, ErrChanged) {
				t.Fatalf("read of the changed file: %v, want ErrChanged", err)
			}
			ch, err := f.Changes(nil)
			if err != nil || len(ch) != 1 || ch[0].File != 3 || ch[0].Kind != c.kind {
				t.Fatalf("Changes = %+v, %v; want file 3 %v", ch, err, c.kind)
			}
			if got := f.Stamps(); !slices.Equal(got, before) {
				t.Fatalf("Stamps before Rebase = %v, want the verified %v", got, before)
			}
			f.Rebase(ch)
			if got, now := f.Stamps(), mustStat(t, f); !slices.Equal(got, now) {
				t.Fatalf("Stamps after Rebase = %v, want %v", got, now)
			}
			if ch, _ := f.Changes(nil); len(ch) != 0 {
				t.Fatalf("Changes after Rebase = %+v", ch)
			}
			if c.kind == Modified || c.kind == Replaced {
				if _, err := f.ReadAt(buf, l.Files[3].Offset); err != nil {
					t.Fatalf("read after Rebase: %v", err)
				}
			}
		})
	}
}

// TestChangesCachedHandleRenamedOver: a file renamed over the path while its handle is
// cached is reported, and the handle is dropped so that reads see the new file only after
// Rebase.
func TestChangesCachedHandleRenamedOver(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	writePayload(t, l, dir, "tor", stream(l, 4))
	f := openTor(t, l, dir, OpenOptions{})
	buf := make([]byte, 10)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tor", "a")
	if err := os.WriteFile(p+".new", []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	ch, err := f.Changes(nil)
	if err != nil || len(ch) != 1 || ch[0].Kind != Replaced {
		t.Fatalf("Changes = %+v, %v", ch, err)
	}
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, ErrChanged) {
		t.Fatalf("read before Rebase: %v, want ErrChanged", err)
	}
	f.Rebase(ch)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "0123456789" {
		t.Fatalf("read after Rebase: %q, %v", buf, err)
	}
}

// TestChangesOwnWrites: a file Files wrote is not reported for its new time; one written
// by someone else is.
func TestChangesOwnWrites(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	f := openTor(t, l, dir, OpenOptions{Write: true})
	if _, err := f.WriteAt([]byte("xyz"), 0); err != nil {
		t.Fatal(err)
	}
	if ch, err := f.Changes(nil); err != nil || len(ch) != 0 {
		t.Fatalf("Changes after our own write = %+v, %v", ch, err)
	}
	p := filepath.Join(dir, "tor", "dir", "b")
	if err := os.Truncate(p, 2); err != nil {
		t.Fatal(err)
	}
	if ch, err := f.Changes(nil); err != nil || len(ch) != 1 || ch[0].File != 3 || ch[0].Kind != Truncated {
		t.Fatalf("Changes after a truncation = %+v, %v", ch, err)
	}
}

// TestChangesRacy: a file seen changed within racyWindow of its last write is reported
// once more when quiet (a write in the same clock tick as the stat would not show), then
// no more.
func TestChangesRacy(t *testing.T) {
	l := testLayout(t, 1)
	dir := t.TempDir()
	writePayload(t, l, dir, "tor", stream(l, 5))
	f := openTor(t, l, dir, OpenOptions{})
	if f.Racy() {
		t.Fatal("racy at Open")
	}
	if err := os.WriteFile(filepath.Join(dir, "tor", "a"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := f.Changes(nil)
	if err != nil || len(ch) != 1 || ch[0].Again {
		t.Fatalf("Changes = %+v, %v", ch, err)
	}
	f.Rebase(ch)
	if !f.Racy() {
		t.Fatal("a file just written is not racy")
	}
	testenv.WaitFor(t, 10*time.Second, "the racy file reported again", func() error {
		ch, err = f.Changes(ch[:0])
		if err != nil || len(ch) != 1 || ch[0].Kind != Modified || !ch[0].Again {
			return fmt.Errorf("Changes = %+v, %v", ch, err)
		}
		return nil
	})
	f.Rebase(ch)
	if f.Racy() {
		t.Fatal("racy after the file was quiet")
	}
	if ch, err := f.Changes(nil); err != nil || len(ch) != 0 {
		t.Fatalf("Changes of a settled file = %+v, %v", ch, err)
	}
}

// openTor opens the payload "tor" of l under dir until the test ends.
func openTor(t *testing.T, l *Layout, dir string, o OpenOptions) *Files {
	t.Helper()
	f, err := Open(l, dir, "tor", false, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mustStat(t *testing.T, f *Files) []FileStamp {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
