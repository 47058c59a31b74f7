package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/webseed"
)

// TestWebseedServers fetches a multi-file payload with awkward names (spaces, '#', '?', '%',
// '+', ';', non-ASCII, a .gz) and BEP 47 pad files, and a single-file one, through the web
// seed client from a real nginx and a real Apache httpd serving them as static files: Range
// requests answered with 206, every byte equal.
func TestWebseedServers(t *testing.T) {
	for _, p := range []webPath{
		{Name: "nginx", Server: "nginx", Snippet: "webswarm-proxy.conf"},
		{Name: "apache", Server: "apache", Snippet: "webswarm-proxy.conf"},
	} {
		t.Run(p.Name, func(t *testing.T) {
			dir := webDir(t)
			htdocs := filepath.Join(dir, "htdocs")
			multi, stream := wsWriteMulti(t, htdocs)
			single, file := wsWriteSingle(t, htdocs)
			f := webStartFront(t, p, dir, webBackend{})

			// Multi-file: the URL is the folder above the torrent's top folder.
			s, err := webseed.New(f.URL+"/pub", multi, webseed.Options{MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			wsFetchAll(t, s, stream, multi.PieceLength)
			// Several pieces at once: spans over many files, fetched in parallel.
			wsFetchAll(t, s, stream, 5*multi.PieceLength)

			// Single file, URL ending in "/": the escaped name is appended.
			s1, err := webseed.New(f.URL+"/pub/", single, webseed.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s1.Close()
			wsFetchAll(t, s1, file, single.PieceLength)
			wsAll206(t, filepath.Join(dir, "access.log"))
		})
	}
}

var wsMultiFiles = []struct {
	path []string
	size int64
	pad  bool
}{
	{path: []string{"read me.txt"}, size: 1000},
	{path: []string{".pad", "31768"}, size: 31768, pad: true},
	{path: []string{"100% #1?.bin"}, size: 200000},
	{path: []string{"empty"}, size: 0},
	{path: []string{"sub dir ü", "ünï cødé ✓.dat"}, size: 65536},
	{path: []string{"sub dir ü", "x+y;z=1&a@b,c$.bin"}, size: 7},
	{path: []string{"archive.tar.gz"}, size: 90000},
}

// wsWriteMulti writes the multi-file payload under htdocs/pub/<name>/ and returns its torrent
// and byte stream (pad files as zeros).
func wsWriteMulti(t *testing.T, htdocs string) (*metafile.Torrent, []byte) {
	t.Helper()
	const name = "Odd payload #1 (50% off)"
	r := rand.New(rand.NewPCG(1, 2))
	var files []storage.File
	var stream []byte
	for _, f := range wsMultiFiles {
		files = append(files, storage.File{Path: f.path, Length: f.size, Pad: f.pad})
		data := make([]byte, f.size)
		if !f.pad {
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			wsWriteFile(t, filepath.Join(append([]string{htdocs, "pub", name}, f.path...)...), data)
		}
		stream = append(stream, data...)
	}
	l, err := storage.NewLayout(files, 32<<10)
	if err != nil {
		t.Fatal(err)
	}
	return &metafile.Torrent{Name: name, PieceLength: 32 << 10, Layout: l}, stream
}

func wsWriteSingle(t *testing.T, htdocs string) (*metafile.Torrent, []byte) {
	t.Helper()
	const name = "big file #2 ?%.iso"
	data := make([]byte, webseed.SmallFile+12345) // a 200 would be refused: 206 or fail
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	wsWriteFile(t, filepath.Join(htdocs, "pub", name), data)
	l, err := storage.NewLayout([]storage.File{{Path: []string{name}, Length: int64(len(data))}}, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	return &metafile.Torrent{Name: name, Single: true, PieceLength: 256 << 10, Layout: l}, data
}

// wsAll206 asserts that the server answered every request of the access log with 206.
func wsAll206(t *testing.T, log string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	n := 0
	for _, l := range lines {
		if !strings.Contains(l, "GET /pub/") {
			continue
		}
		n++
		if !strings.Contains(l, "\" 206 ") {
			t.Errorf("not a 206: %s", l)
		}
	}
	if n < 20 {
		t.Errorf("only %d requests logged:\n%s", n, b)
	}
}

// wsWriteFile writes data to path, with every directory and the file readable by the web
// server's workers.
func wsWriteFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wsFetchAll reads the whole stream through s, step bytes per Fetch, into a dirty buffer and
// compares.
func wsFetchAll(t *testing.T, s *webseed.Seed, want []byte, step int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := bytes.Repeat([]byte{0xee}, len(want))
	for off := int64(0); off < int64(len(want)); off += step {
		n := min(step, int64(len(want))-off)
		if filled, err := s.Fetch(ctx, got[off:off+n], off); err != nil || int64(filled) != n {
			t.Fatalf("%s: bytes %d+%d: %d filled, %v", s.URL(), off, n, filled, err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: fetched bytes differ", s.URL())
	}
}
