package allowlist

import (
	"bytes"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the .torrent parser: an error or a torrent, never a panic
// (a panic in the rescan goroutine would take the tracker down).
func FuzzParse(f *testing.F) {
	for _, info := range []string{v1Info("a", 1), hybridInfo("b", 2), v2OnlyInfo("c", 3)} {
		file, _ := torrentFile(info)
		f.Add(file)
	}
	f.Add([]byte("d4:infod9:file treed1:ad0:d6:lengthi-1eeee12:meta versioni2e4:name1:a12:piece lengthi1eee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tor, hashes, err := safeParse(bytes.NewReader(data))
		if err == nil && (tor == nil || len(hashes) == 0 || tor.Size < 0) {
			t.Fatalf("parse accepted %q: %+v %v", data, tor, hashes)
		}
	})
}
