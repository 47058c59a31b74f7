package webseed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/webseed"
)

// newTorrent returns a torrent of the given files (only what a Seed reads is filled in).
func newTorrent(t testing.TB, name string, single bool, plen int64, files ...storage.File) *metafile.Torrent {
	t.Helper()
	l, err := storage.NewLayout(files, plen)
	if err != nil {
		t.Fatal(err)
	}
	return &metafile.Torrent{Name: name, Single: single, PieceLength: plen, Layout: l}
}

func randomBytes(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// site serves files by decoded URL path with net/http's Range support and records what it
// was asked.
type site struct {
	mu      sync.Mutex
	files   map[string][]byte
	uris    []string // RequestURI of every request
	ranges  []string
	agents  []string
	noRange bool
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.uris = append(s.uris, r.RequestURI)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.agents = append(s.agents, r.Header.Get("User-Agent"))
	data, ok := s.files[r.URL.Path]
	noRange := s.noRange
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if noRange {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (s *site) requests() (uris, ranges []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uris), slices.Clone(s.ranges)
}

func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func newSeed(t testing.TB, rawURL string, tor *metafile.Torrent, o webseed.Options) *webseed.Seed {
	t.Helper()
	s, err := webseed.New(rawURL, tor, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func fetch(t testing.TB, s *webseed.Seed, off, n int64) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dst := bytes.Repeat([]byte{0xee}, int(n))
	got, err := s.Fetch(ctx, dst, off)
	if err == nil && got != len(dst) {
		t.Errorf("Fetch(%d+%d) filled %d bytes without an error", off, n, got)
	}
	return dst, err
}

func TestSingleFileRanges(t *testing.T) {
	const size = 100000
	data := randomBytes(1, size)
	st := &site{files: map[string][]byte{"/dl/file.iso": data, "/dl/my file #1?.iso": data}}
	ts := serve(t, st)
	tor := newTorrent(t, "my file #1?.iso", true, 32<<10, storage.File{Path: []string{"my file #1?.iso"}, Length: size})

	// The URL is the file itself; the torrent's name is not appended.
	s := newSeed(t, ts.URL+"/dl/file.iso", tor, webseed.Options{UserAgent: "webswarm/test"})
	for _, r := range [][2]int64{{0, 32 << 10}, {64 << 10, size - 64<<10}, {0, size}, {size - 1, 1}} {
		got, err := fetch(t, s, r[0], r[1])
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("bytes %d+%d: err %v, equal %v", r[0], r[1], err, bytes.Equal(got, data[r[0]:r[0]+r[1]]))
		}
	}
	uris, ranges := st.requests()
	want := []string{"bytes=0-32767", "bytes=65536-99999", "bytes=0-99999", "bytes=99999-99999"}
	if !slices.Equal(ranges, want) {
		t.Errorf("Range headers %q, want %q", ranges, want)
	}
	for _, u := range uris {
		if u != "/dl/file.iso" {
			t.Errorf("requested %q", u)
		}
	}
	if st.agents[0] != "webswarm/test" {
		t.Errorf("User-Agent %q", st.agents[0])
	}
	if s.URL() != ts.URL+"/dl/file.iso" {
		t.Errorf("URL() = %q", s.URL())
	}

	// A URL ending in "/" gets the escaped name appended.
	st.uris = nil
	s = newSeed(t, ts.URL+"/dl/", tor, webseed.Options{})
	if got, err := fetch(t, s, 10, 20); err != nil || !bytes.Equal(got, data[10:30]) {
		t.Fatalf("name appended: %v", err)
	}
	if uris, _ := st.requests(); len(uris) != 1 || uris[0] != "/dl/my%20file%20%231%3F.iso" {
		t.Errorf("requested %q", uris)
	}
}

// TestMultiFileOddNames fetches a multi-file torrent with awkward names and pad files whole,
// in pieces and across file boundaries.
func TestMultiFileOddNames(t *testing.T) {
	type f struct {
		path []string
		size int64
		pad  bool
	}
	spec := []f{
		{path: []string{"a b.txt"}, size: 5000},
		{path: []string{".pad", "11384"}, size: 11384, pad: true},
		{path: []string{"100%.bin"}, size: 40000},
		{path: []string{"empty"}, size: 0},
		{path: []string{"dir ü", "ünï cødé #?.dat"}, size: 70001},
		{path: []string{"x+y;z=1&a@b,c$.bin"}, size: 3},
		{path: []string{"deep", "er", "last ✓.bin"}, size: 20000},
	}
	const name = "Odd torrent #2 (100%)"
	st := &site{files: map[string][]byte{}}
	var files []storage.File
	var stream []byte
	for i, s := range spec {
		files = append(files, storage.File{Path: s.path, Length: s.size, Pad: s.pad})
		data := randomBytes(uint64(i+10), s.size)
		if s.pad {
			data = make([]byte, s.size)
		} else {
			st.files["/seed/"+name+"/"+strings.Join(s.path, "/")] = data
		}
		stream = append(stream, data...)
	}
	ts := serve(t, st)
	tor := newTorrent(t, name, false, 16<<10, files...)
	for _, base := range []string{ts.URL + "/seed", ts.URL + "/seed/"} {
		st.uris = nil
		s := newSeed(t, base, tor, webseed.Options{MaxConns: 2})
		got, err := fetch(t, s, 0, int64(len(stream)))
		if err != nil || !bytes.Equal(got, stream) {
			t.Fatalf("%s: whole stream: err %v, equal %v", base, err, bytes.Equal(got, stream))
		}
		uris, _ := st.requests()
		slices.Sort(uris)
		want := []string{
			"/seed/Odd%20torrent%20%232%20%28100%25%29/100%25.bin",
			"/seed/Odd%20torrent%20%232%20%28100%25%29/a%20b.txt",
			"/seed/Odd%20torrent%20%232%20%28100%25%29/deep/er/last%20%E2%9C%93.bin",
			"/seed/Odd%20torrent%20%232%20%28100%25%29/dir%20%C3%BC/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9%20%23%3F.dat",
			"/seed/Odd%20torrent%20%232%20%28100%25%29/x+y%3Bz=1&a@b%2Cc$.bin",
		}
		if !slices.Equal(uris, want) {
			t.Errorf("%s: requested\n%q\nwant (no pad file, no empty file)\n%q", base, uris, want)
		}
	}
	// Piece by piece, from dirty buffers: pad bytes come back as zeros.
	s := newSeed(t, ts.URL+"/seed", tor, webseed.Options{})
	for off := int64(0); off < int64(len(stream)); off += 16 << 10 {
		n := min(16<<10, int64(len(stream))-off)
		got, err := fetch(t, s, off, n)
		if err != nil || !bytes.Equal(got, stream[off:off+n]) {
			t.Fatalf("piece at %d: err %v", off, err)
		}
	}
}

func TestQueryKept(t *testing.T) {
	var got atomic.Value
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.RequestURI)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(make([]byte, 100)))
	}))
	tor := newTorrent(t, "t", false, 16<<10, storage.File{Path: []string{"a", "b c"}, Length: 100})
	s := newSeed(t, ts.URL+"/x?token=s%20t#frag", tor, webseed.Options{})
	if _, err := fetch(t, s, 0, 100); err != nil {
		t.Fatal(err)
	}
	if u := got.Load(); u != "/x/t/a/b%20c?token=s%20t" {
		t.Errorf("requested %q", u)
	}
}

func TestNoRangeServer(t *testing.T) {
	big := randomBytes(2, webseed.SmallFile+1)
	small := randomBytes(3, 1<<20)
	st := &site{noRange: true, files: map[string][]byte{"/big": big, "/small": small}}
	ts := serve(t, st)
	tBig := newTorrent(t, "big", true, 1<<20, storage.File{Path: []string{"big"}, Length: int64(len(big))})
	tSmall := newTorrent(t, "small", true, 1<<18, storage.File{Path: []string{"small"}, Length: int64(len(small))})

	s := newSeed(t, ts.URL+"/big", tBig, webseed.Options{})
	if _, err := fetch(t, s, 1<<20, 1<<20); !errors.Is(err, webseed.ErrNoRange) {
		t.Errorf("big file, no Range: %v, want ErrNoRange", err)
	}
	// Asking for the whole file, a 200 is the right answer whatever the size.
	if got, err := fetch(t, s, 0, int64(len(big))); err != nil || !bytes.Equal(got, big) {
		t.Errorf("whole big file from a 200: %v", err)
	}
	// A small file: the slice is cut from the whole body.
	s = newSeed(t, ts.URL+"/small", tSmall, webseed.Options{})
	got, err := fetch(t, s, 300000, 1<<18)
	if err != nil || !bytes.Equal(got, small[300000:300000+1<<18]) {
		t.Errorf("small file, no Range: %v", err)
	}
	// A small file shorter than the torrent says.
	tLong := newTorrent(t, "small", true, 1<<18, storage.File{Path: []string{"small"}, Length: int64(len(small)) + 10})
	s = newSeed(t, ts.URL+"/small", tLong, webseed.Options{})
	if _, err := fetch(t, s, int64(len(small))-5, 15); !errors.Is(err, webseed.ErrShort) {
		t.Errorf("short small file: %v, want ErrShort", err)
	}
}

func TestStatusErrors(t *testing.T) {
	data := randomBytes(4, 1000)
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/403":
			http.Error(w, "no", http.StatusForbidden)
		case "/gone":
			w.WriteHeader(http.StatusGone)
		case "/short":
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		default:
			http.NotFound(w, r)
		}
	}))
	torOf := func(size int64) *metafile.Torrent {
		return newTorrent(t, "f", true, 1<<10, storage.File{Path: []string{"f"}, Length: size})
	}
	for _, tc := range []struct {
		path      string
		size      int64
		off, n    int64
		want      error
		wantCode  int
		wantNotIs []error
	}{
		{path: "/missing", size: 1000, n: 10, want: webseed.ErrNotFound},
		{path: "/gone", size: 1000, n: 10, want: webseed.ErrNotFound},
		{path: "/500", size: 1000, n: 10, want: webseed.ErrStatus, wantCode: 500},
		{path: "/403", size: 1000, n: 10, want: webseed.ErrStatus, wantCode: 403},
		// The server's file is 1000 bytes, the torrent's 2000: past the end is 416, across it
		// a clipped Content-Range.
		{path: "/short", size: 2000, off: 1500, n: 500, want: webseed.ErrShort},
		{path: "/short", size: 2000, off: 900, n: 200, want: webseed.ErrShort},
	} {
		s := newSeed(t, ts.URL+tc.path, torOf(tc.size), webseed.Options{})
		_, err := fetch(t, s, tc.off, tc.n)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.path, err, tc.want)
			continue
		}
		var se *webseed.StatusError
		if errors.As(err, &se) != (tc.wantCode != 0) || (se != nil && se.Code != tc.wantCode) {
			t.Errorf("%s: StatusError %+v, want code %d", tc.path, se, tc.wantCode)
		}
		for _, other := range []error{webseed.ErrNotFound, webseed.ErrStatus, webseed.ErrShort, webseed.ErrNoRange} {
			if other != tc.want && errors.Is(err, other) {
				t.Errorf("%s: %v also matches %v", tc.path, err, other)
			}
		}
	}
}

// TestHostileResponses: wrong or malformed Content-Range, a body ending early, a body longer
// than asked.
func TestHostileResponses(t *testing.T) {
	const size = 1 << 20
	var extraWritten atomic.Int64
	handlerDone := make(chan struct{}, 1)
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wrongstart":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-99/%d", size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 100))
		case "/garbage":
			w.Header().Set("Content-Range", "bytes lots")
			w.WriteHeader(http.StatusPartialContent)
		case "/toolong":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 100-199/%d", size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 100))
		case "/shortbody":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 100-199/%d", size))
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 40)) // the server closes the connection after the handler
		case "/endless":
			defer func() { handlerDone <- struct{}{} }()
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 100-199/%d", size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(bytes.Repeat([]byte{7}, 100))
			chunk := make([]byte, 64<<10)
			for extraWritten.Load() < 256<<20 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				extraWritten.Add(int64(len(chunk)))
			}
		}
	}))
	tor := newTorrent(t, "f", true, 1<<10, storage.File{Path: []string{"f"}, Length: size})
	for _, tc := range []struct {
		path string
		off  int64
		n    int64
		want error
	}{
		{"/wrongstart", 100, 100, webseed.ErrBadResponse},
		{"/garbage", 100, 100, webseed.ErrBadResponse},
		{"/toolong", 100, 50, webseed.ErrBadResponse}, // 100-199 for 100-149
		{"/shortbody", 100, 100, webseed.ErrShort},
	} {
		s := newSeed(t, ts.URL+tc.path, tor, webseed.Options{})
		if _, err := fetch(t, s, tc.off, tc.n); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.path, err, tc.want)
		}
	}
	// A body that does not stop: Fetch takes its 100 bytes and hangs up.
	s := newSeed(t, ts.URL+"/endless", tor, webseed.Options{})
	got, err := fetch(t, s, 100, 100)
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{7}, 100)) {
		t.Fatalf("endless body: %v", err)
	}
	select {
	case <-handlerDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the endless handler is still writing: the connection was not closed")
	}
	if n := extraWritten.Load(); n >= 256<<20 {
		t.Errorf("the server wrote %d extra bytes: the body was drained", n)
	}
}

func TestBadArguments(t *testing.T) {
	tor := newTorrent(t, "f", true, 1<<10, storage.File{Path: []string{"f"}, Length: 5000})
	for _, u := range []string{"ftp://h/f", "http:///f", "/f", "h/f", "http://h/%zz", "://"} {
		if _, err := webseed.New(u, tor, webseed.Options{}); !errors.Is(err, webseed.ErrBadURL) {
			t.Errorf("New(%q): %v, want ErrBadURL", u, err)
		}
	}
	if _, err := webseed.New("http://h/f", &metafile.Torrent{}, webseed.Options{}); err == nil {
		t.Error("New with a torrent without layout succeeded")
	}
	s := newSeed(t, "http://127.0.0.1:9/f", tor, webseed.Options{})
	for _, r := range [][2]int64{{-1, 10}, {4999, 2}, {5001, 0}, {0, 5001}} {
		if _, err := fetch(t, s, r[0], r[1]); !errors.Is(err, webseed.ErrBadRange) {
			t.Errorf("Fetch(%d+%d): %v, want ErrBadRange", r[0], r[1], err)
		}
	}
	if _, err := fetch(t, s, 5000, 0); err != nil {
		t.Errorf("empty fetch at the end: %v", err)
	}
}

// TestConcurrencyBound: with MaxConns 3, two Fetch calls over 12 files never have more than 3
// requests in flight, and do reach 3.
func TestConcurrencyBound(t *testing.T) {
	const maxConns, nfiles, fsize = 3, 12, 1000
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	st := &site{files: map[string][]byte{}}
	var files []storage.File
	var stream []byte
	for i := range nfiles {
		name := fmt.Sprintf("f%02d", i)
		data := randomBytes(uint64(100+i), fsize)
		st.files["/t/"+name] = data
		stream = append(stream, data...)
		files = append(files, storage.File{Path: []string{name}, Length: fsize})
	}
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		inflight.Add(-1)
		st.ServeHTTP(w, r)
	}))
	tor := newTorrent(t, "t", false, 4000, files...)
	// A client without a per-host connection limit: the bound must come from the Seed.
	s := newSeed(t, ts.URL, tor, webseed.Options{MaxConns: maxConns, Client: ts.Client()})
	type result struct {
		got []byte
		err error
	}
	results := make(chan result, 2)
	half := int64(len(stream) / 2)
	for _, off := range []int64{0, half} {
		go func() {
			got, err := fetch(t, s, off, half)
			results <- result{got, err}
		}()
	}
	testenv.WaitFor(t, 10*time.Second, "3 requests in flight", func() error {
		if n := inflight.Load(); n < maxConns {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
	close(release)
	var got []byte
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		got = append(got, r.got...)
	}
	if !bytes.Equal(got, stream) && !bytes.Equal(append(got[half:], got[:half]...), stream) {
		t.Error("bytes differ")
	}
	if p := peak.Load(); p != maxConns {
		t.Errorf("peak %d requests in flight, want %d", p, maxConns)
	}
}

// TestKeepAlive: sequential fetches reuse one connection.
func TestKeepAlive(t *testing.T) {
	data := randomBytes(5, 1<<20)
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(&site{files: map[string][]byte{"/f": data}})
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	tor := newTorrent(t, "f", true, 1<<16, storage.File{Path: []string{"f"}, Length: int64(len(data))})
	s := newSeed(t, ts.URL+"/f", tor, webseed.Options{})
	for off := int64(0); off < int64(len(data)); off += 1 << 16 {
		if got, err := fetch(t, s, off, 1<<16); err != nil || !bytes.Equal(got, data[off:off+1<<16]) {
			t.Fatalf("piece at %d: %v", off, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("16 sequential fetches opened %d connections, want 1", n)
	}
}

func TestContextCancel(t *testing.T) {
	entered := make(chan struct{})
	sawCancel := make(chan struct{})
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(sawCancel)
	}))
	tor := newTorrent(t, "f", false, 1<<10,
		storage.File{Path: []string{"a"}, Length: 10}, storage.File{Path: []string{"b"}, Length: 10})
	s := newSeed(t, ts.URL, tor, webseed.Options{MaxConns: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Fetch(ctx, make([]byte, 20), 0)
		done <- err
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Fetch: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Fetch did not return after its context was cancelled")
	}
	select {
	case <-sawCancel:
	case <-time.After(20 * time.Second):
		t.Fatal("the server never saw the request cancelled")
	}
}

// TestFetchPrefix: a Fetch that fails reports how many bytes at the start of dst it filled —
// across file spans, up to the first span not filled whole — so a caller can keep the
// pieces in there.
func TestFetchPrefix(t *testing.T) {
	a, b := randomBytes(3, 1000), randomBytes(4, 1000)
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var data []byte
		switch r.URL.Path {
		case "/t/a":
			data = a
		case "/t/b", "/b":
			data = b
		default:
			http.NotFound(w, r)
			return
		}
		var first, last int
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(last-first+1))
		w.WriteHeader(http.StatusPartialContent)
		part := data[first : last+1]
		if strings.HasPrefix(r.URL.Path, "/t/b") || r.URL.Path == "/b" {
			part = part[:len(part)/2] // then the connection is closed: a short body
		}
		w.Write(part)
	}))
	single := newTorrent(t, "b", true, 256, storage.File{Path: []string{"b"}, Length: 1000})
	s := newSeed(t, ts.URL+"/b", single, webseed.Options{})
	dst := make([]byte, 600)
	n, err := s.Fetch(context.Background(), dst, 200)
	if !errors.Is(err, webseed.ErrShort) || n != 300 || !bytes.Equal(dst[:n], b[200:500]) {
		t.Errorf("single file: %d bytes, %v; want 300 and ErrShort", n, err)
	}
	multi := newTorrent(t, "t", false, 256, storage.File{Path: []string{"a"}, Length: 1000}, storage.File{Path: []string{"b"}, Length: 1000})
	s = newSeed(t, ts.URL+"/", multi, webseed.Options{MaxConns: 1}) // a before b
	dst = make([]byte, 1400)
	n, err = s.Fetch(context.Background(), dst, 400) // a[400:], then b[:800], half of it sent
	if !errors.Is(err, webseed.ErrShort) || n != 600+400 || !bytes.Equal(dst[:600], a[400:]) || !bytes.Equal(dst[600:n], b[:400]) {
		t.Errorf("two files: %d bytes, %v; want 1000 and ErrShort", n, err)
	}
	missing := newTorrent(t, "u", false, 256, storage.File{Path: []string{"a"}, Length: 1000}, storage.File{Path: []string{"b"}, Length: 1000})
	s = newSeed(t, ts.URL+"/", missing, webseed.Options{})
	if n, err := s.Fetch(context.Background(), make([]byte, 1400), 400); !errors.Is(err, webseed.ErrNotFound) || n != 0 {
		t.Errorf("first file missing: %d bytes, %v; want 0 and ErrNotFound", n, err)
	}
}
