package dfile

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// Import reads the state file at path into store, as Load does, but for a file the admin
// names once to move a tracker's state elsewhere (tracker --import_dfile): a file that is
// missing, unreadable or not a state file is an error naming it, and the file is left where
// it is (Load moves a corrupt file aside and carries on). Torrents the store refuses make
// an error too, after everything else is restored.
//
// Import adds to what store holds; whether importing the same file twice changes anything
// is the store's Restore's business (the Redis store keeps a peer it already has and takes
// the larger completion count).
func Import(path string, store swarm.Store) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, fmt.Errorf("import state file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Stats{}, fmt.Errorf("import state file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Stats{}, fmt.Errorf("import state file %s: not a regular file", path)
	}
	stats, err := readState(f, st.Size(), store, time.Now())
	if errors.Is(err, errDecode) {
		return stats, fmt.Errorf("import state file %s: not a state file: %w", path, err)
	}
	if err != nil {
		return stats, fmt.Errorf("import state file %s: %w", path, err)
	}
	return stats, nil
}
