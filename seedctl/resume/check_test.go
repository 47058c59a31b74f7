package resume

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

const testPiece = 16 << 10

// payload is a torrent made from files on disk, and its open payload.
type payload struct {
	t     *metafile.Torrent
	f     *storage.Files
	dir   string // data directory (holds the torrent's top folder)
	files map[string]int
}

// makePayload writes files of the given sizes under dir/pl and makes a hybrid torrent of
// them (so pad files sit between them) with 16 KiB pieces.
func makePayload(t testing.TB, sizes map[string]int, hybrid bool) *payload {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	for name, size := range sizes {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		p := filepath.Join(dir, "pl", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := metafile.Make(context.Background(), metafile.MakeOptions{
		Paths: []string{filepath.Join(dir, "pl")}, PieceLength: testPiece, NoDate: true, Hybrid: hybrid})
	if err != nil {
		t.Fatal(err)
	}
	tor, err := metafile.Parse(m.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	pl := &payload{t: tor, dir: dir, files: map[string]int{}}
	for i, f := range tor.Layout.Files {
		if !f.Pad {
			pl.files[filepath.Join(f.Path...)] = i
		}
	}
	pl.open(t, storage.OpenOptions{})
	return pl
}

func (p *payload) open(t testing.TB, o storage.OpenOptions) {
	t.Helper()
	f, err := storage.Open(p.t.Layout, p.dir, p.t.Name, p.t.Single, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	p.f = f
}

// corrupt flips one byte of file name at off and returns the piece it lies in. The file's
// size and modification time are restored unless touch.
func (p *payload) corrupt(t *testing.T, name string, off int64, touch bool) int {
	t.Helper()
	path := filepath.Join(p.dir, "pl", name)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if touch {
		// A new time unlike any the file had (file systems with coarse clocks too).
		err = os.Chtimes(path, st.ModTime().Add(time.Hour), st.ModTime().Add(time.Hour))
	} else {
		err = os.Chtimes(path, st.ModTime(), st.ModTime())
	}
	if err != nil {
		t.Fatal(err)
	}
	return int((p.t.Layout.Files[p.files[name]].Offset + off) / p.t.PieceLength)
}

// record is a record of the payload as it is now, holding have.
func (p *payload) record(t *testing.T, have wire.Bitfield, clean bool) *Record {
	t.Helper()
	st, err := p.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &Record{InfoHash: p.t.InfoHash, Have: append([]byte(nil), have.Bytes()...), Files: st, Clean: clean}
}

// progressLog records the calls of a progress callback.
type progressLog struct {
	mu    sync.Mutex
	calls []Progress
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	l.calls = append(l.calls, p)
	l.mu.Unlock()
}

func (l *progressLog) last() Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		return Progress{Done: -1, Total: -1}
	}
	return l.calls[len(l.calls)-1]
}

var sizes = map[string]int{"a": 40000, "b/c": 5, "d": 3*testPiece + 100, "e": 70000}

// wantAllBut checks that have holds every piece except missing.
func wantAllBut(t *testing.T, have wire.Bitfield, missing ...int) {
	t.Helper()
	skip := map[int]bool{}
	for _, m := range missing {
		skip[m] = true
	}
	for i := range have.Len() {
		if have.Has(i) == skip[i] {
			t.Fatalf("piece %d: have=%v, want %v (missing %v)", i, have.Has(i), !skip[i], missing)
		}
	}
}

func TestCheckFull(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		p := makePayload(t, sizes, hybrid)
		var log progressLog
		have, err := Check(context.Background(), p.t, p.f, Full, nil, 2, log.add)
		if err != nil {
			t.Fatal(err)
		}
		wantAllBut(t, have)
		if got := log.last(); got.Done != p.t.Layout.Total || got.Total != p.t.Layout.Total {
			t.Fatalf("last progress %+v, want %d bytes", got, p.t.Layout.Total)
		}
		bad := p.corrupt(t, "d", 2*testPiece+7, false)
		have, err = Check(context.Background(), p.t, p.f, Full, nil, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantAllBut(t, have, bad)
	}
}

func TestCheckSingleFile(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 5*testPiece+1)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(dir, "one.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := metafile.Make(context.Background(), metafile.MakeOptions{Paths: []string{path}, PieceLength: testPiece, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := metafile.Parse(m.Torrent)
	data[5*testPiece] ^= 1 // the last piece, one byte long
	os.WriteFile(path, data, 0o644)
	f, err := storage.Open(tor.Layout, dir, tor.Name, tor.Single, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	have, err := Check(context.Background(), tor, f, Full, nil, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantAllBut(t, have, 5)
}

func TestCheckFast(t *testing.T) {
	p := makePayload(t, sizes, true)
	full, err := Check(context.Background(), p.t, p.f, Full, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := p.corrupt(t, "a", 100, false) // same size, same mtime: undetectable by stamps

	t.Run("clean and unchanged: trusted without reading", func(t *testing.T) {
		var log progressLog
		have, err := Check(context.Background(), p.t, p.f, Fast, p.record(t, full, true), 0, log.add)
		if err != nil {
			t.Fatal(err)
		}
		wantAllBut(t, have) // the corrupted piece too: proof nothing was hashed
		if got := log.last(); got.Total != 0 {
			t.Fatalf("progress %+v: something was hashed", got)
		}
	})
	t.Run("clean, one file touched: full check", func(t *testing.T) {
		rec := p.record(t, full, true)
		other := p.corrupt(t, "e", 1000, true)
		defer p.corrupt(t, "e", 1000, true) // undo the change (new mtime again)
		var log progressLog
		have, err := Check(context.Background(), p.t, p.f, Fast, rec, 0, log.add)
		if err != nil {
			t.Fatal(err)
		}
		wantAllBut(t, have, bad, other)
		if got := log.last(); got.Total != p.t.Layout.Total {
			t.Fatalf("progress %+v, want a full check of %d bytes", got, p.t.Layout.Total)
		}
	})
	t.Run("no record: full check", func(t *testing.T) {
		have, err := Check(context.Background(), p.t, p.f, Fast, nil, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantAllBut(t, have, bad)
	})
	t.Run("record of another shape: full check", func(t *testing.T) {
		for _, edit := range []func(r *Record){
			func(r *Record) { r.Have = r.Have[1:] },
			func(r *Record) { r.Have[len(r.Have)-1] |= 1 }, // a spare bit set
			func(r *Record) { r.Files = r.Files[1:] },
		} {
			rec := p.record(t, full, true)
			edit(rec)
			have, err := Check(context.Background(), p.t, p.f, Fast, rec, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantAllBut(t, have, bad)
		}
	})
}

func TestCheckFastAfterCrash(t *testing.T) {
	p := makePayload(t, sizes, true)
	full, err := Check(context.Background(), p.t, p.f, Full, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The record says: every piece but the last one of "e" and the first one of "d" held,
	// written while downloading (not clean). Both are complete on disk.
	rec := p.record(t, full, false)
	have, _ := wire.ParseBitfield(rec.Have, full.Len())
	_, eEnd := p.t.Layout.FilePieces(p.files["e"])
	dFirst, dEnd := p.t.Layout.FilePieces(p.files["d"])
	have.Clear(eEnd - 1)
	have.Clear(dFirst)
	rec.Have = have.Bytes()

	// After the record: "a" is changed behind our back without its stamp moving (trusted:
	// its pieces are marked held and its stamp is unchanged); "d" is written (new mtime) and
	// one of its pieces is bad.
	trusted := p.corrupt(t, "a", 5, false)
	badD := p.corrupt(t, "d", testPiece+3, true)

	var log progressLog
	got, err := Check(context.Background(), p.t, p.f, Fast, rec, 2, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Has(trusted) {
		t.Fatal("a held piece of an unchanged file was re-hashed")
	}
	if !got.Has(eEnd-1) || !got.Has(dFirst) {
		t.Fatal("pieces complete on disk but not in the record were not found")
	}
	wantAllBut(t, got, badD)
	// Hashed: the pieces of "d" (changed), and the last of "e" (not held); nothing else.
	want := int64(0)
	for i := dFirst; i < dEnd; i++ {
		want += p.t.Layout.PieceSize(i)
	}
	want += p.t.Layout.PieceSize(eEnd - 1) // hybrid: files never share a piece
	if last := log.last(); last.Total != want || last.Done != want {
		t.Fatalf("progress %+v; want %d bytes hashed", last, want)
	}
}

func TestCheckNone(t *testing.T) {
	p := makePayload(t, sizes, false)
	changed := p.corrupt(t, "a", 10, true) // content is not looked at
	if err := os.Truncate(filepath.Join(p.dir, "pl", "e"), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(p.dir, "pl", "b", "c")); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Open(p.t.Layout, p.dir, p.t.Name, false, storage.OpenOptions{}); err == nil {
		t.Fatal("read-only Open of a payload with a missing file succeeded")
	}
	p.open(t, storage.OpenOptions{AllowMissing: true})
	have, err := Check(context.Background(), p.t, p.f, None, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var missing []int
	for _, name := range []string{"b/c", "e"} {
		first, end := p.t.Layout.FilePieces(p.files[name])
		for i := first; i < end; i++ {
			missing = append(missing, i)
		}
	}
	wantAllBut(t, have, missing...)
	if !have.Has(changed) {
		t.Fatal("None hashed a piece")
	}
}

func TestCheckCancelled(t *testing.T) {
	p := makePayload(t, sizes, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, m := range []Mode{Full, Fast} {
		if _, err := Check(ctx, p.t, p.f, m, nil, 0, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v check with a cancelled context: %v", m, err)
		}
	}
	// Cancelled from the first progress report, that is while starting to hash.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if _, err := Check(ctx, p.t, p.f, Full, nil, 1, func(Progress) { cancel() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("check cancelled midway: %v", err)
	}
}

func TestCheckMismatch(t *testing.T) {
	p := makePayload(t, sizes, false)
	rec := &Record{InfoHash: [20]byte{1}}
	for _, m := range []Mode{Full, Fast, None} {
		if _, err := Check(context.Background(), p.t, p.f, m, rec, 0, nil); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%v: record of another torrent: %v", m, err)
		}
	}
	if _, err := Check(context.Background(), p.t, p.f, Mode(9), nil, 0, nil); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{Full, Fast, None} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if m, err := ParseMode("FAST"); err != nil || m != Fast {
		t.Fatalf("ParseMode(FAST) = %v, %v", m, err)
	}
	for _, s := range []string{"", "quick", "full "} {
		if _, err := ParseMode(s); err == nil {
			t.Fatalf("ParseMode(%q) accepted", s)
		}
	}
	if Mode(7).String() != "Mode(7)" {
		t.Fatal(Mode(7).String())
	}
}

func TestHashPiece(t *testing.T) {
	p := makePayload(t, sizes, true)
	data := make([]byte, p.t.Layout.PieceSize(2))
	if _, err := p.f.ReadAt(data, p.t.Layout.PieceOffset(2)); err != nil {
		t.Fatal(err)
	}
	if !HashPiece(p.t, 2, data) || HashPiece(p.t, 3, data) {
		t.Fatal("HashPiece: wrong answer for piece 2's data")
	}
	data[0] ^= 0x80
	if HashPiece(p.t, 2, data) {
		t.Fatal("HashPiece accepts a changed piece")
	}
}

// BenchmarkCheckFull hashes a 64 MiB payload (in the page cache) with the default workers.
func BenchmarkCheckFull(b *testing.B) {
	p := makePayload(b, map[string]int{"big": 64 << 20}, false)
	b.SetBytes(p.t.Layout.Total)
	b.ReportAllocs()
	for b.Loop() {
		have, err := Check(context.Background(), p.t, p.f, Full, nil, 0, nil)
		if err != nil || !have.Full() {
			b.Fatal(err)
		}
	}
}
