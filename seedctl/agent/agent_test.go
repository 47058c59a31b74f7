package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/resume"
)

// Torrents present at start are checked, seed, announce "started", serve a peer on the one
// listen port (two torrents, sessions started on demand), and SIGTERM's path announces
// "stopped" for every one within 10 s.
func TestExistingTorrentsSeedServeAndStop(t *testing.T) {
	tr := startTracker(t)
	dir := t.TempDir()
	a1 := publish(t, dir, "one.iso", tr.URL)
	a2 := publish(t, filepath.Join(dir, "sub"), "two.iso", tr.URL)
	r := start(t, testConfig(t, dir))
	r.waitState(t, a1, Seeding)
	r.waitState(t, a2, Seeding)
	waitUntil(t, "started announces", func() bool { return tr.events(a1, "started") == 1 && tr.events(a2, "started") == 1 })

	for _, ih := range []string{a1, a2} {
		if err := dialTorrent(r.Addr(), mustHash(t, ih)); err != nil {
			t.Fatalf("handshake for %s on the agent's port: %v", ih, err)
		}
	}
	var unknown [20]byte
	if err := dialTorrent(r.Addr(), unknown); err == nil {
		t.Error("handshake for an unknown info-hash succeeded")
	}
	st := r.Status()
	if st.Torrents != 2 || st.ByState[Seeding] != 2 || st.ListenPort == 0 {
		t.Errorf("status %+v", st)
	}

	if d := r.stop(t); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for _, ih := range []string{a1, a2} {
		if n := tr.events(ih, "stopped"); n != 1 {
			t.Errorf("%s: %d stopped announces, want 1", ih, n)
		}
	}
}

// A second agent on the same state directory refuses to start, naming the holder.
func TestLockFile(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	r := start(t, cfg)
	_, err := New(cfg)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") || !strings.Contains(err.Error(), LockPath(cfg.StateDir)) {
		t.Fatalf("second agent: %v, want ErrLocked naming the pid and the lock file", err)
	}
	r.stop(t)
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("agent after the first stopped: %v", err)
	}
	b.Close()
}

// New, changed and removed .torrent files are picked up with fsnotify, and without it by
// the periodic rescan.
func TestWatchAndRescan(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(map[bool]string{true: "fsnotify", false: "rescan"}[watch], func(t *testing.T) {
			tr := startTracker(t)
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			cfg.NoWatch = !watch
			if !watch {
				cfg.RescanInterval = 100 * time.Millisecond
			}
			r := start(t, cfg)
			ih := publish(t, dir, "new.iso", tr.URL)
			r.waitState(t, ih, Seeding)

			// Changed: the same path now holds another torrent.
			b, ih2b := makeTorrent(t, dir, "other.iso", tr.URL)
			tmp := filepath.Join(dir, ".tmp")
			os.WriteFile(tmp, b, 0o644)
			if err := os.Rename(tmp, filepath.Join(dir, "new.iso.torrent")); err != nil {
				t.Fatal(err)
			}
			ih2 := ih2b.String()
			r.waitState(t, ih2, Seeding)
			r.waitGone(t, ih)
			waitUntil(t, "stopped for the replaced torrent", func() bool { return tr.events(ih, "stopped") == 1 })

			os.Remove(filepath.Join(dir, "new.iso.torrent"))
			r.waitGone(t, ih2)
			waitUntil(t, "stopped for the removed torrent", func() bool { return tr.events(ih2, "stopped") == 1 })
		})
	}
}

// A .torrent still being written is not taken (nor reported) until it parses.
func TestHalfWrittenTorrentRetried(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.NoWatch = true
	cfg.RescanInterval = 50 * time.Millisecond
	r := start(t, cfg)
	b, ihb := makeTorrent(t, dir, "slow.iso", "")
	p := filepath.Join(dir, "slow.iso.torrent")
	if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a rescan of the half-written file", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.seen[p].bad
	})
	if l := r.List(); len(l) != 0 {
		t.Fatalf("half-written torrent listed: %+v", l)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, ihb.String(), Seeding)
}

// A torrent whose payload is missing is in error (status and metric), never crashes the
// agent, and seeds once the payload appears.
func TestMissingPayloadRecovers(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	b, ihb := makeTorrent(t, data, "late.iso", "")
	os.WriteFile(filepath.Join(dir, "late.iso.torrent"), b, 0o644)
	hold := filepath.Join(t.TempDir(), "late.iso")
	if err := os.Rename(filepath.Join(data, "late.iso"), hold); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	cfg.Data = data
	r := start(t, cfg)
	ih := ihb.String()
	ti := r.waitState(t, ih, Error)
	if !strings.Contains(ti.Error, "late.iso") {
		t.Errorf("error %q does not name the file", ti.Error)
	}
	if err := os.Rename(hold, filepath.Join(data, "late.iso")); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, ih, Seeding)
}

// A payload that fails verification is in error and re-checked with back-off, not in a
// loop.
func TestCorruptPayloadBacksOff(t *testing.T) {
	dir := t.TempDir()
	ih := publish(t, dir, "bad.iso", "")
	os.WriteFile(filepath.Join(dir, "bad.iso"), make([]byte, 64<<10), 0o644)
	cfg := testConfig(t, dir)
	cfg.RetryInterval = 200 * time.Millisecond
	r := start(t, cfg)
	ti := r.waitState(t, ih, Error)
	if !strings.Contains(ti.Error, "verification") {
		t.Errorf("error %q", ti.Error)
	}
	time.Sleep(time.Second) // a window to count re-checks in, not a wait for a condition
	// 200 ms doubling: checks at about 0, 0.2, 0.6 s (and maybe 1.4): never one per tick.
	if n := r.checksHashed.Load(); n < 2 || n > 4 {
		t.Errorf("%d checks in about 1.2 s with back-off from 200 ms", n)
	}
}

// Storage that disappears (an unmounted disk) pauses its torrents without re-checking them
// again and again; when it is back they seed again trusting their resume records.
func TestStorageMissingPausesWithoutRecheck(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(t.TempDir(), "disk")
	b, ihb := makeTorrent(t, data, "big.iso", "")
	os.WriteFile(filepath.Join(dir, "big.iso.torrent"), b, 0o644)
	cfg := testConfig(t, dir)
	cfg.Data = data
	cfg.RescanInterval = 50 * time.Millisecond
	r := start(t, cfg)
	ih := ihb.String()
	r.waitState(t, ih, Seeding)
	hashed := r.checksHashed.Load()

	gone := data + ".unmounted"
	if err := os.Rename(data, gone); err != nil {
		t.Fatal(err)
	}
	ti := r.waitState(t, ih, Paused)
	if !strings.Contains(ti.Error, "storage missing") {
		t.Errorf("paused torrent's error %q", ti.Error)
	}
	time.Sleep(500 * time.Millisecond) // many rescans and housekeeping ticks
	if n := r.checksHashed.Load(); n != hashed {
		t.Errorf("%d hashing checks while the storage was missing", n-hashed)
	}
	if err := os.Rename(gone, data); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, ih, Seeding)
	if n := r.checksHashed.Load(); n != hashed {
		t.Errorf("storage back: %d hashing checks, want the resume record trusted", n-hashed)
	}
}

// --max-active: beyond it torrents wait queued, and take a slot that frees up.
func TestMaxActiveQueue(t *testing.T) {
	dir := t.TempDir()
	a1 := publish(t, dir, "a.iso", "")
	a2 := publish(t, dir, "b.iso", "")
	cfg := testConfig(t, dir)
	cfg.MaxActive = 1
	r := start(t, cfg)
	waitUntil(t, "one seeding, one queued", func() bool {
		st := r.Status()
		return st.ByState[Seeding] == 1 && st.ByState[Queued] == 1
	})
	first, second := a1, a2
	if ti, _ := r.Get(mustHash(t, a2)); ti.State == Seeding {
		first, second = a2, a1
	}
	if err := dialTorrent(r.Addr(), mustHash(t, second)); err == nil {
		t.Error("a queued torrent was served")
	}
	if err := r.Pause(mustHash(t, first)); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, second, Seeding)
	r.waitState(t, first, Paused)
	if err := r.Resume(mustHash(t, first)); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, first, Queued)
}

// After a crash only torrents whose record is not clean (being written) are hashed again;
// clean ones are trusted.
func TestUncleanRecordOnlyRehashed(t *testing.T) {
	dir := t.TempDir()
	a1 := publish(t, dir, "clean.iso", "")
	a2 := publish(t, dir, "dirty.iso", "")
	cfg := testConfig(t, dir)
	r := start(t, cfg)
	r.waitState(t, a1, Seeding)
	r.waitState(t, a2, Seeding)
	if n := r.checksHashed.Load(); n != 2 {
		t.Fatalf("first start hashed %d torrents, want 2 (no records)", n)
	}
	r.stop(t)

	rp := filepath.Join(cfg.StateDir, a2+".resume")
	rec, err := resume.Load(rp)
	if err != nil {
		t.Fatal(err)
	}
	rec.Clean = false
	rec.Have = make([]byte, len(rec.Have)) // as if the last pieces were still being written
	if err := rec.Save(rp); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	r.waitState(t, a1, Seeding)
	r.waitState(t, a2, Seeding)
	if h, tr := r.checksHashed.Load(), r.checksTrusted.Load(); h != 1 || tr != 1 {
		t.Errorf("restart: %d hashed, %d trusted; want 1 and 1", h, tr)
	}
}

// Remove, Pause, Verify and Add through the Controller; bad input is classified.
func TestController(t *testing.T) {
	tr := startTracker(t)
	dir, elsewhere := t.TempDir(), t.TempDir()
	ih := publish(t, dir, "c.iso", tr.URL)
	cfg := testConfig(t, dir)
	cfg.RescanInterval = 50 * time.Millisecond
	r := start(t, cfg)
	r.waitState(t, ih, Seeding)

	if _, err := r.Get(mustHash(t, strings.Repeat("0", 40))); !errors.Is(err, ErrUnknown) {
		t.Errorf("Get of unknown: %v", err)
	}
	if _, err := r.Add(context.Background(), filepath.Join(dir, "c.iso.torrent"), ""); !errors.Is(err, ErrConflict) {
		t.Errorf("Add of a torrent already seeded: %v", err)
	}
	junk := filepath.Join(elsewhere, "junk.torrent")
	os.WriteFile(junk, []byte("d4:infoi1ee"), 0o644)
	if _, err := r.Add(context.Background(), junk, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Add of junk: %v", err)
	}
	if _, err := r.Add(context.Background(), filepath.Join(elsewhere, "none.torrent"), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Add of a missing file: %v", err)
	}

	// Verify before the first announce went out would leave nothing to stop and one
	// started in all (the test failed so about once in 20 runs).
	waitUntil(t, "the first started", func() bool { return tr.events(ih, "started") == 1 })
	if err := r.Verify(mustHash(t, ih)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the full re-check", func() bool { return r.checksHashed.Load() == 2 })
	r.waitState(t, ih, Seeding)

	// A re-check stops seeding meanwhile (stopped), then seeds again (started).
	waitUntil(t, "started again after the re-check", func() bool { return tr.events(ih, "started") == 2 })
	if err := r.Remove(mustHash(t, ih)); err != nil {
		t.Fatal(err)
	}
	r.waitGone(t, ih)
	waitUntil(t, "stopped after Remove", func() bool { return tr.events(ih, "stopped") == 2 })
	time.Sleep(200 * time.Millisecond) // several rescans: a removed torrent stays removed
	if _, err := r.Get(mustHash(t, ih)); !errors.Is(err, ErrUnknown) {
		t.Errorf("removed torrent back after rescans: %v", err)
	}
	if err := r.Remove(mustHash(t, ih)); !errors.Is(err, ErrUnknown) {
		t.Errorf("second Remove: %v", err)
	}

	b, ihb := makeTorrent(t, elsewhere, "d.iso", tr.URL)
	p := filepath.Join(elsewhere, "d.iso.torrent")
	os.WriteFile(p, b, 0o644)
	ti, err := r.Add(context.Background(), p, "")
	if err != nil || ti.InfoHash != ihb.String() || ti.Data != elsewhere {
		t.Fatalf("Add: %+v, %v", ti, err)
	}
	r.waitState(t, ti.InfoHash, Seeding)
	r.stop(t)

	// Both decisions survive a restart.
	r = start(t, cfg)
	r.waitState(t, ti.InfoHash, Seeding)
	time.Sleep(200 * time.Millisecond)
	if _, err := r.Get(mustHash(t, ih)); !errors.Is(err, ErrUnknown) {
		t.Errorf("removed torrent back after restart: %v", err)
	}
}
