package dfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/webswarm/webswarm/internal/atomicfile"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// ErrCorrupt marks a Load error for a state file that could not be read or decoded and was
// (or should have been) moved aside. errors.Is(err, ErrCorrupt) tells it from other errors.
var ErrCorrupt = errors.New("state file unreadable or corrupt")

// CorruptError is Load's error for a state file it could not use.
type CorruptError struct {
	Path string
	// MovedTo is where the file now is; empty when moving it failed (then the file is still
	// at Path and Saver refuses to overwrite it).
	MovedTo string
	// Err is why the file was unusable (and why moving it failed, if it did).
	Err error
}

func (e *CorruptError) Error() string {
	if e.MovedTo == "" {
		return fmt.Sprintf("state file %s is unusable and could NOT be moved aside: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("state file %s is unusable, moved aside to %s, starting with an empty state: %v", e.Path, e.MovedTo, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Save writes the store's state to path atomically (internal/atomicfile): into a temporary
// file in the same directory, synced, then renamed over path, and the directory synced. A
// failure leaves the previous file untouched and no temporary file behind. An existing file's
// permissions are kept; a new file is created 0600 (it holds peers' addresses). The file is
// written as the store is read, one torrent at a time: no copy of the whole state is made.
func Save(path string, store swarm.Store) error {
	o := atomicfile.Options{Mode: 0o600, KeepMode: true}
	if err := atomicfile.Write(path, o, func(w io.Writer) error { return encode(w, store) }); err != nil {
		return fmt.Errorf("save state file: %w", err)
	}
	return nil
}

// checkDir reports whether path's directory exists and takes new files: a tracker that would
// lose its state at the first save refuses to start instead.
func checkDir(path string) error {
	if err := atomicfile.CheckDir(path); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// Load reads the state file at path into store. A missing file is a fresh start: zero Stats
// and no error. A file that cannot be read or decoded is moved aside to
// PATH.corrupt-YYYYmmddTHHMMSS (UTC) and Load returns a *CorruptError (errors.Is ErrCorrupt)
// for the caller to log loudly; the store is left empty and the tracker can go on. Torrents
// the store refuses (its torrent limit) are counted in Stats.Refused and reported as an error
// after everything else is loaded.
func Load(path string, store swarm.Store) (Stats, error) {
	return load(path, store, time.Now())
}

func load(path string, store swarm.Store, now time.Time) (Stats, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Stats{}, nil
	}
	if err == nil {
		var st fs.FileInfo
		if st, err = f.Stat(); err == nil {
			var stats Stats
			stats, err = readState(f, st.Size(), store, now)
			f.Close()
			if err == nil {
				return stats, nil
			}
			if !errors.Is(err, errDecode) {
				return stats, fmt.Errorf("load state file %s: %w", path, err)
			}
		} else {
			f.Close()
		}
	}
	ce := &CorruptError{Path: path, Err: err}
	moved, merr := moveAside(path, now)
	if merr != nil {
		ce.Err = errors.Join(err, merr)
	} else {
		ce.MovedTo = moved
	}
	return Stats{}, ce
}

// moveAside renames path to path.corrupt-STAMP, adding -2, -3… if that name is taken.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405")
	for i := 1; i < 1000; i++ {
		dst := base
		if i > 1 {
			dst = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.Rename(path, dst); err != nil {
			return "", fmt.Errorf("move aside: %w", err)
		}
		return dst, nil
	}
	return "", fmt.Errorf("move aside: too many files named %s*", base)
}
