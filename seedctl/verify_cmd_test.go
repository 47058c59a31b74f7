package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLocalVerify(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.torrent")
	if err := os.WriteFile(file, []byte("d4:infoe"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		local bool
	}{
		{[]string{file, dir}, true},
		{[]string{filepath.Join(dir, "missing.torrent"), dir}, true}, // the local error, not "no agent"
		{[]string{"missing.torrent", "data"}, true},
		{[]string{"big.iso", dir}, true},          // second is a directory
		{[]string{"big.iso"}, false},              // one name: the agent
		{[]string{"big.iso", "small.iso"}, false}, // two names: the agent
		{[]string{"8c94", "a1b2c3"}, false},
		{[]string{file, dir, "extra"}, false},
	} {
		if got := localVerify(tc.args); got != tc.local {
			t.Errorf("localVerify(%q) = %v, want %v", tc.args, got, tc.local)
		}
	}
}
