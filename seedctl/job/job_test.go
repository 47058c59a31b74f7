package job

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
)

// makeTorrent writes a 64 KiB payload in dir and returns its parsed torrent.
func makeTorrent(t *testing.T, dir string) *metafile.Torrent {
	t.Helper()
	payload := filepath.Join(dir, "data.bin")
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(payload, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := metafile.Make(context.Background(), metafile.MakeOptions{Paths: []string{payload}, PieceLength: 16 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	mt, err := metafile.Parse(m.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

func newJob(t *testing.T, mt *metafile.Torrent, dir, resumePath string) *Job {
	t.Helper()
	j, err := New(Config{Torrent: mt, DataDir: dir, ResumePath: resumePath, Check: resume.Fast,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Check hashes a payload without a record once, saves the record clean, and trusts it the
// next time; a changed payload is hashed again and found incomplete; a missing one is
// fs.ErrNotExist.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	mt := makeTorrent(t, dir)
	rp := filepath.Join(t.TempDir(), "x.resume")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	have, hashed, err := newJob(t, mt, dir, rp).Check(ctx)
	if err != nil || !hashed || !have.Full() {
		t.Fatalf("first Check: full %v hashed %v err %v; want full, hashed", have.Full(), hashed, err)
	}
	rec, err := resume.Load(rp)
	if err != nil || !rec.Clean {
		t.Fatalf("record after a complete check: %+v, %v; want clean", rec, err)
	}
	have, hashed, err = newJob(t, mt, dir, rp).Check(ctx)
	if err != nil || hashed || !have.Full() {
		t.Fatalf("second Check: full %v hashed %v err %v; want trusted", have.Full(), hashed, err)
	}

	p := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(p, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	have, hashed, err = newJob(t, mt, dir, rp).Check(ctx)
	if err != nil || !hashed || have.Full() {
		t.Fatalf("Check of a changed payload: full %v hashed %v err %v; want hashed, incomplete", have.Full(), hashed, err)
	}
	os.Remove(p)
	if _, _, err = newJob(t, mt, dir, rp).Check(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Check of a missing payload: %v, want fs.ErrNotExist", err)
	}
}

// With NoAnnounce, Run makes no tracker client (the torrent has a tracker URL that would
// fail) and Ready is closed once the session runs.
func TestRunNoAnnounceReady(t *testing.T) {
	dir := t.TempDir()
	mt := makeTorrent(t, dir)
	mt.Trackers = [][]string{{"http://127.0.0.1:1/announce"}}
	j, stop := runSeed(t, Config{Torrent: mt, DataDir: dir})
	if j.Session() == nil {
		t.Error("Ready but no Session")
	}
	if st := j.Stats(); st.Tracker.URL != "" || st.State != Seeding {
		t.Errorf("stats %+v: want seeding without a tracker", st)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A download into an empty directory skips the check (nothing to hash: the files are created
// sparse); a partial payload already there is hashed and its good pieces kept.
func TestCheckFreshDownload(t *testing.T) {
	mt := makeTorrent(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dl := func(dir string) *Job {
		j, err := New(Config{Torrent: mt, DataDir: dir, ResumePath: filepath.Join(t.TempDir(), "r"),
			Check: resume.Fast, Download: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}

	empty := t.TempDir()
	have, hashed, err := dl(empty).Check(ctx)
	if err != nil || hashed || have.Count() != 0 || have.Len() != 4 {
		t.Fatalf("fresh download: %d/%d pieces, hashed %v, err %v; want 0/4, not hashed", have.Count(), have.Len(), hashed, err)
	}
	if st, err := os.Stat(filepath.Join(empty, "data.bin")); err != nil || st.Size() != 64<<10 {
		t.Fatalf("payload file not created at full size: %v", err)
	}

	// Half of the payload already there (an earlier download without its record).
	partial := t.TempDir()
	b := make([]byte, 64<<10)
	for i := range 32 << 10 {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(partial, "data.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	have, hashed, err = dl(partial).Check(ctx)
	if err != nil || !hashed || have.Count() != 2 {
		t.Fatalf("partial payload: %d pieces, hashed %v, err %v; want 2, hashed", have.Count(), hashed, err)
	}
}
