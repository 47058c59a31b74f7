package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPayloadChangedUnderSession: a payload is changed in place while its session runs;
// list shows it in error with the pieces that still match, and when the session idles out
// the torrent does not go back to "seeding" on trust: it is checked again and stays in
// error. (Before, it went on seeding at 100 %.)
func TestPayloadChangedUnderSession(t *testing.T) {
	dir := t.TempDir()
	ih := publish(t, dir, "one.iso", "")
	cfg := testConfig(t, dir)
	cfg.NoWatch = true                 // the session's poll finds the change
	cfg.PayloadPoll = time.Millisecond // at every tick of the session
	cfg.IdleTimeout = 2 * time.Second
	cfg.RetryInterval = time.Hour // one check after the session, no retries to count
	r := start(t, cfg)
	r.waitState(t, ih, Seeding)
	if err := dialTorrent(r.Addr(), mustHash(t, ih)); err != nil { // starts the session
		t.Fatal(err)
	}
	r.mu.Lock()
	tor := r.byHash[mustHash(t, ih)]
	r.mu.Unlock()
	waitUntil(t, "the session running", func() bool {
		j := r.runningJob(tor)
		return j != nil && j.Session() != nil
	})

	p := filepath.Join(dir, "one.iso")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[20<<10] ^= 0xff // piece 1 of 4
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	ti := r.waitState(t, ih, Error)
	if !strings.Contains(ti.Error, "3 of 4 pieces match") && !strings.Contains(ti.Error, "3 of 4 pieces good") {
		t.Fatalf("error %q", ti.Error)
	}
	// The session idles out; what follows is the check, which finds piece 1 bad.
	waitUntil(t, "the session stopped and the torrent checked", func() bool {
		for _, ti := range r.List() {
			if ti.InfoHash == ih {
				return ti.State == Error && strings.Contains(ti.Error, "3 of 4 pieces good")
			}
		}
		return false
	})
}
