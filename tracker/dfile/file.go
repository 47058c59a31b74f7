package dfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// Save writes the store's state to path atomically: into a temporary file in the same
// directory, synced, then renamed over path, and the directory synced. A failure leaves the
// previous file untouched and no temporary file behind. An existing file's permissions are
// kept; a new file is created 0600 (it holds peers' addresses). The file is written as the
// store is read, one torrent at a time: no copy of the whole state is made.
func Save(path string, store swarm.Store) error {
	if err := writeAtomic(path, func(w io.Writer) error { return encode(w, store) }); err != nil {
		return fmt.Errorf("save state file: %w", err)
	}
	return nil
}

// writeAtomic replaces path with what write produces, or leaves it alone.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := fs.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, tempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	// The rename is durable only once the directory entry is on disk.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// tempPrefix starts the names of the temporary files writeAtomic makes for a file named base
// (os.CreateTemp ends them with random digits).
func tempPrefix(base string) string { return "." + base + ".tmp-" }

// checkDir reports whether path's directory exists and takes new files, by creating and
// removing a temporary file there as a save does: a tracker that would lose its state at
// the first save refuses to start instead.
func checkDir(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("directory %s of state file %s is missing or not writable: %w", dir, path, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("directory %s of state file %s: remove test file: %w", dir, path, err)
	}
	return nil
}

// removeStaleTemps removes the temporary files of saves that never finished (the tracker was
// killed mid-save) and returns how many it removed. Only names writeAtomic makes for this
// state file are touched: .BASE.tmp- followed by digits, regular files.
func removeStaleTemps(path string) (int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list %s for stale temporary files: %w", dir, err)
	}
	prefix := tempPrefix(base)
	n := 0
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
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
