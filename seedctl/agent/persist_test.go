package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPersistentSave: the agent's state is saved 0600 (like the resume records beside it)
// and reads back.
func TestPersistentSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.json")
	p := persistent{Paused: []string{"0123456789abcdef0123456789abcdef01234567"}}
	if err := p.save(path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("agent state: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	got, err := loadPersistent(path)
	if err != nil || !slices.Equal(got.Paused, p.Paused) {
		t.Errorf("loaded %+v, %v; want %+v", got, err, p)
	}
}
