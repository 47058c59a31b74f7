package dfile

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// TestImport: a saved state is imported whole; a missing or corrupt file is an error naming
// it, and a corrupt file stays where it is (Load would move it aside).
func TestImport(t *testing.T) {
	src := newStore(t, swarm.Config{})
	for i := range 5 {
		if err := announce(t, src, ih(i), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:6881", "", uint64(i%2), swarm.Started); err != nil {
			t.Fatal(err)
		}
		if err := announce(t, src, ih(i), "-TR3000-bbbbbbbbbbbb", "10.0.0.2:6881", "", 0, swarm.Completed); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := Save(path, src); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t, swarm.Config{})
	stats, err := Import(path, dst)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Torrents != 5 || stats.Peers != 10 {
		t.Errorf("stats %+v, want 5 torrents and 10 peers", stats)
	}
	if got, want := walk(dst), walk(src); !reflect.DeepEqual(got, want) {
		t.Errorf("imported state differs:\n got %+v\nwant %+v", got, want)
	}

	if _, err := Import(filepath.Join(dir, "missing"), newStore(t, swarm.Config{})); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
	bad := filepath.Join(dir, "garbage")
	content := []byte("d5:peersi3ee")
	if err := os.WriteFile(bad, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(bad, newStore(t, swarm.Config{})); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt file: %v, want an error naming it", err)
	}
	if got, err := os.ReadFile(bad); err != nil || !bytes.Equal(got, content) {
		t.Errorf("corrupt file not left in place: %v", err)
	}
	if _, err := Import(dir, newStore(t, swarm.Config{})); err == nil {
		t.Errorf("a directory imported without an error")
	}
}
