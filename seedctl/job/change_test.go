package job

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/resume"
)

// editPayload changes one byte of dir/data.bin in place (the file keeps its inode and
// size) and gives it a modification time it never had (file systems with coarse clocks).
func editPayload(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "data.bin")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[20<<10] ^= 0xff // piece 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
}

// runSeed runs a seed-only job of cfg (fast check, no tracker client) until stop is
// called, which returns Run's error.
func runSeed(t *testing.T, cfg Config) (*Job, func() error) {
	t.Helper()
	cfg.Check, cfg.NoAnnounce, cfg.Logger = resume.Fast, true, slog.New(slog.DiscardHandler)
	cfg.Session.PeerID[0] = 'x'
	j, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	select {
	case <-j.Ready():
	case err := <-done:
		t.Fatalf("Run ended before Ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not Ready after 10 s")
	}
	return j, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
			return nil
		}
	}
}

// TestShutdownRecordAfterUnseenChange: the payload is edited just before a clean stop,
// before the session noticed. The record saved at the stop must not vouch for the new
// file: the next fast check hashes it and finds the changed piece bad. (Before, the record
// took the file's new size and time with every piece marked held, and the next start
// served the bad piece without hashing.)
func TestShutdownRecordAfterUnseenChange(t *testing.T) {
	dir := t.TempDir()
	mt := makeTorrent(t, dir)
	rp := filepath.Join(t.TempDir(), "x.resume")
	cfg := Config{Torrent: mt, DataDir: dir, ResumePath: rp}
	cfg.Session.PayloadCheckInterval = -1 // the session never looks: only the stop can
	_, stop := runSeed(t, cfg)
	editPayload(t, dir)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	have, hashed, err := newJob(t, mt, dir, rp).Check(ctx)
	if err != nil || !hashed || have.Has(1) || have.Count() != 3 {
		t.Fatalf("fast check after the stop: %d pieces (piece 1: %v), hashed %v, err %v; want 3, hashed",
			have.Count(), have.Has(1), hashed, err)
	}
}

// TestRunSeesPayloadChange: a file notification tells the running job its payload
// changed; its state leaves seeding (checking, then missing: one piece no longer
// matches), and the record saved at the stop keeps the bad piece out.
func TestRunSeesPayloadChange(t *testing.T) {
	dir := t.TempDir()
	mt := makeTorrent(t, dir)
	rp := filepath.Join(t.TempDir(), "x.resume")
	w, err := NewWatcher(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg := Config{Torrent: mt, DataDir: dir, ResumePath: rp, Watcher: w}
	cfg.Session.PayloadCheckInterval = -1 // notifications only
	j, stop := runSeed(t, cfg)
	if st := j.Stats(); st.State != Seeding {
		t.Fatalf("state %v before the change", st.State)
	}
	editPayload(t, dir)
	testenv.WaitFor(t, 10*time.Second, "state missing", func() error {
		if st := j.Stats(); st.State != Missing || st.Session.Have != 3 {
			return fmt.Errorf("state %v, %d pieces", st.State, st.Session.Have)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rec, err := resume.Load(rp)
	if err != nil {
		t.Fatal(err)
	}
	// Pieces 0, 2 and 3 (unless the stop came while they were hashed once more), never 1.
	if rec.Have[0]&^0b1011_0000 != 0 || rec.Clean {
		t.Fatalf("record holds %08b, clean %v; want at most 10110000, not clean", rec.Have[0], rec.Clean)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	have, hashed, err := newJob(t, mt, dir, rp).Check(ctx)
	if err != nil || !hashed || have.Has(1) || have.Count() != 3 {
		t.Fatalf("fast check after the stop: %d pieces, hashed %v, err %v; want 3, hashed", have.Count(), hashed, err)
	}
}
