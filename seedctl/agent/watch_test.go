package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// A directory moved into the watched tree with torrents already inside (tar x elsewhere, then
// mv) yields one inotify event, for the directory: its files are found at once anyway, not at
// the next periodic rescan (an hour away here).
func TestWatchNewDirectoryWithFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	r := start(t, cfg)
	staging := filepath.Join(t.TempDir(), "batch")
	if err := os.Mkdir(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	ih := publish(t, staging, "moved.iso", "")
	if err := os.Rename(staging, filepath.Join(dir, "batch")); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, ih, Seeding)
}
