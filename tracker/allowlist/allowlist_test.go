package allowlist

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
)

var _ announce.AllowList = (*List)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// bstr bencodes a string.
func bstr(s string) string { return fmt.Sprintf("%d:%s", len(s), s) }

// torrentFile builds a metainfo file around a hand-written info dictionary (keys sorted) and
// returns it with the info dictionary's exact bytes.
func torrentFile(info string) (file []byte, infoBytes []byte) {
	return []byte("d" + bstr("announce") + bstr("http://t/announce") + bstr("info") + info + "e"), []byte(info)
}

func v1Info(name string, length int) string {
	return "d" + bstr("length") + fmt.Sprintf("i%de", length) + bstr("name") + bstr(name) +
		bstr("piece length") + "i16384e" + bstr("pieces") + bstr(strings.Repeat("x", 20)) + "e"
}

// v2FileTree is a one-file BEP 52 file tree.
func v2FileTree(name string, length int) string {
	return "d" + bstr(name) + "d" + bstr("") + "d" + bstr("length") + fmt.Sprintf("i%de", length) +
		bstr("pieces root") + bstr(strings.Repeat("r", 32)) + "eee"
}

func hybridInfo(name string, length int) string {
	return "d" + bstr("file tree") + v2FileTree(name, length) + bstr("length") + fmt.Sprintf("i%de", length) +
		bstr("meta version") + "i2e" + bstr("name") + bstr(name) + bstr("piece length") + "i16384e" +
		bstr("pieces") + bstr(strings.Repeat("x", 20)) + "e"
}

func v2OnlyInfo(name string, length int) string {
	return "d" + bstr("file tree") + v2FileTree(name, length) + bstr("meta version") + "i2e" +
		bstr("name") + bstr(name) + bstr("piece length") + "i16384e" + "e"
}

func v1Hash(info []byte) bittorrent.InfoHash { return sha1.Sum(info) }
func v2Hash(info []byte) bittorrent.InfoHash {
	s := sha256.Sum256(info)
	return bittorrent.InfoHash(s[:20])
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newList(t *testing.T, dir string) *List {
	t.Helper()
	l, err := New(Config{Dir: dir, Interval: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestHandBuiltTorrents(t *testing.T) {
	dir := t.TempDir()
	v1, v1info := torrentFile(v1Info("one.iso", 1000))
	hy, hyinfo := torrentFile(hybridInfo("hybrid.bin", 5000))
	v2, v2info := torrentFile(v2OnlyInfo("v2only.bin", 7000))
	write(t, filepath.Join(dir, "one.iso.torrent"), v1)
	write(t, filepath.Join(dir, "sub", "deeper", "hybrid.TORRENT"), hy)
	write(t, filepath.Join(dir, "sub", "v2.torrent"), v2)
	write(t, filepath.Join(dir, "sub", "garbage.torrent"), []byte("not bencode"))
	write(t, filepath.Join(dir, "sub", "noinfo.torrent"), []byte("d8:announce3:urle"))
	write(t, filepath.Join(dir, "readme.txt"), v1) // not a .torrent name: ignored
	unnamed, unnamedInfo := torrentFile(v1Info("", 3))
	write(t, filepath.Join(dir, "unnamed.torrent"), unnamed)
	l := newList(t, dir)

	for _, tc := range []struct {
		ih   bittorrent.InfoHash
		name string
		size int64
	}{
		{v1Hash(v1info), "one.iso", 1000},
		{v1Hash(hyinfo), "hybrid.bin", 5000},
		{v2Hash(hyinfo), "hybrid.bin", 5000},
		{v2Hash(v2info), "v2only.bin", 7000},
		{v1Hash(unnamedInfo), "unnamed", 3},
	} {
		if !l.Allowed(tc.ih) {
			t.Errorf("%s (%v) not allowed", tc.name, tc.ih)
		}
		if name, size, ok := l.Info(tc.ih); !ok || name != tc.name || size != tc.size {
			t.Errorf("Info(%v) = %q %d %v, want %q %d", tc.ih, name, size, ok, tc.name, tc.size)
		}
	}
	for _, ih := range []bittorrent.InfoHash{v2Hash(v1info), v1Hash(v2info), {}} {
		if l.Allowed(ih) {
			t.Errorf("%v allowed", ih)
		}
	}
	if path, ok := l.File(v2Hash(hyinfo)); !ok || path != filepath.Join(dir, "sub", "deeper", "hybrid.TORRENT") {
		t.Errorf("File(hybrid v2) = %q %v", path, ok)
	}
	if _, ok := l.File(bittorrent.InfoHash{}); ok {
		t.Error("File of an unknown torrent")
	}
	if st := l.Stats(); st.Files != 6 || st.Bad != 2 || st.Torrents != 5 || st.Parsed != 6 {
		t.Errorf("stats %+v", st)
	}
	n := 0
	l.Range(func(bittorrent.InfoHash, string, int64) bool { n++; return true })
	if n != 5 || l.Len() != 5 {
		t.Errorf("Range saw %d, Len %d", n, l.Len())
	}
}

// mktorrent writes a real .torrent file for payload and returns it with its info-hash, found
// without our parser: mktorrent writes keys in order and "info" last.
func mktorrent(t *testing.T, out, payload string) bittorrent.InfoHash {
	t.Helper()
	bin := testenv.Require(t, "mktorrent", "mktorrent")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-a", "http://127.0.0.1/announce", "-l", "15", "-o", out, payload)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("4:infod"))
	if i < 0 || data[len(data)-1] != 'e' {
		t.Fatalf("unexpected mktorrent output %q", data)
	}
	return sha1.Sum(data[i+6 : len(data)-1])
}

func TestMktorrentFiles(t *testing.T) {
	src := t.TempDir()
	dir := t.TempDir()
	single := filepath.Join(src, "single.bin")
	write(t, single, bytes.Repeat([]byte("a"), 100_000))
	multi := filepath.Join(src, "album")
	write(t, filepath.Join(multi, "1.flac"), bytes.Repeat([]byte("b"), 40_000))
	write(t, filepath.Join(multi, "cd2", "2.flac"), bytes.Repeat([]byte("c"), 60_001))

	ih1 := mktorrent(t, filepath.Join(dir, "single.bin.torrent"), single)
	l := newList(t, dir)
	if name, size, ok := l.Info(ih1); !ok || name != "single.bin" || size != 100_000 {
		t.Errorf("single: %q %d %v", name, size, ok)
	}

	// A torrent added later appears at the next rescan; unchanged files are not parsed again.
	ih2 := mktorrent(t, filepath.Join(dir, "music", "album.torrent"), multi)
	if l.Allowed(ih2) {
		t.Fatal("allowed before the rescan")
	}
	if err := l.Rescan(); err != nil {
		t.Fatal(err)
	}
	if name, size, ok := l.Info(ih2); !ok || name != "album" || size != 100_001 {
		t.Errorf("multi: %q %d %v", name, size, ok)
	}
	if st := l.Stats(); st.Parsed != 1 || st.Files != 2 {
		t.Errorf("rescan stats %+v: want 1 of 2 files parsed", st)
	}
	// A removed file leaves the list.
	if err := os.Remove(filepath.Join(dir, "single.bin.torrent")); err != nil {
		t.Fatal(err)
	}
	if err := l.Rescan(); err != nil {
		t.Fatal(err)
	}
	if l.Allowed(ih1) || !l.Allowed(ih2) {
		t.Errorf("after removal: single %v, multi %v", l.Allowed(ih1), l.Allowed(ih2))
	}
}

func TestPeriodicRescan(t *testing.T) {
	dir := t.TempDir()
	l, err := New(Config{Dir: dir, Interval: 10 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	data, info := torrentFile(v1Info("late.iso", 1))
	write(t, filepath.Join(dir, "late.torrent"), data)
	testenv.WaitFor(t, 10*time.Second, "the periodic rescan", func() error {
		if !l.Allowed(v1Hash(info)) {
			return fmt.Errorf("not allowed yet")
		}
		return nil
	})
	l.Close()
	l.Close() // idempotent
}

func TestDirectoryErrors(t *testing.T) {
	if _, err := New(Config{Dir: filepath.Join(t.TempDir(), "missing"), Logger: quiet()}); err == nil {
		t.Error("New on a missing directory succeeded")
	}
	if _, err := New(Config{Logger: quiet()}); err == nil {
		t.Error("New without a directory succeeded")
	}
	// The directory vanishing keeps the previous list.
	dir := filepath.Join(t.TempDir(), "d")
	data, info := torrentFile(v1Info("x", 1))
	write(t, filepath.Join(dir, "x.torrent"), data)
	l := newList(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Rescan(); err == nil {
		t.Error("Rescan of a vanished directory succeeded")
	}
	if !l.Allowed(v1Hash(info)) {
		t.Error("list emptied by a failed rescan")
	}
}

func BenchmarkAllowed(b *testing.B) {
	dir := b.TempDir()
	data, info := torrentFile(v1Info("x", 1))
	if err := os.WriteFile(filepath.Join(dir, "x.torrent"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	l, err := New(Config{Dir: dir, Interval: -1, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ih := v1Hash(info)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !l.Allowed(ih) {
				b.Fatal("not allowed")
			}
		}
	})
}
