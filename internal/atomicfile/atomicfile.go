// Package atomicfile replaces a file so that a reader, or the file system after a crash,
// sees either the old content or the new, never a mix and never nothing: the new content
// goes into a temporary file in the same directory, which is synced, renamed over the path,
// and the directory is synced so that the rename itself survives a crash.
//
// A write that fails leaves the old file as it was and removes its temporary file. A write
// killed before the rename (kill -9, power loss) can leave its temporary file behind, named
// TempPrefix(name) followed by digits; RemoveStale removes those.
//
// The tracker's state file (tracker/dfile), seedctl's resume records (seedctl/resume),
// .torrent files (seedctl/metafile) and the agent's state are written through it.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Options say how a file is created or replaced.
type Options struct {
	// Mode is the new file's permission bits, exactly: the temporary file is chmod'ed to
	// it, so the umask does not apply.
	Mode fs.FileMode
	// KeepMode replaces an existing file with the same permission bits it had, instead of
	// Mode, so that an administrator's chmod survives the next save.
	KeepMode bool
	// NoReplace refuses to replace an existing file: the error wraps fs.ErrExist. It is
	// checked at the last moment with a hard link, which fails if the file appeared
	// meanwhile; on a file system without hard links, with a rename after a check.
	NoReplace bool
}

// WriteFile replaces path with data (see Write).
func WriteFile(path string, data []byte, o Options) error {
	return Write(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what write writes to the temporary file. An existing path that
// is not a regular file (after symbolic links) is refused: replacing a directory, FIFO or
// device with a file is never what the caller meant. Errors name the path or the step that
// failed; write's own error is wrapped.
func Write(path string, o Options, write func(io.Writer) error) (err error) {
	dir, base := split(path)
	mode := o.Mode.Perm()
	switch st, serr := os.Stat(path); {
	case serr == nil && !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case serr == nil && o.NoReplace:
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	case serr == nil && o.KeepMode:
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, TempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("create a temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	placed := false // tmp is at path now (or was removed)
	defer func() {
		if err != nil && !placed {
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
	if err := place(tmp, path, o.NoReplace); err != nil {
		return err
	}
	placed = true
	// The rename is durable only once the directory entry is on disk: without this a crash
	// could bring back the old file, or none.
	return syncDir(dir)
}

// place moves the finished temporary file to path.
func place(tmp, path string, noReplace bool) error {
	if noReplace {
		// Link fails if path appeared since the check, where rename would replace it.
		lerr := os.Link(tmp, path)
		if errors.Is(lerr, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, fs.ErrExist)
		}
		if lerr == nil {
			if err := os.Remove(tmp); err != nil {
				return fmt.Errorf("remove %s after linking it to %s: %w", tmp, path, err)
			}
			return nil
		}
		// No hard links here (some network and FAT file systems): rename instead.
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return nil
}

func syncDir(dir string) error {
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

// TempPrefix starts the names of the temporary files Write makes for a file named name
// (os.CreateTemp ends them with random digits). The leading dot keeps them out of
// directory listings and out of the agent's scan for *.torrent.
func TempPrefix(name string) string { return "." + name + ".tmp-" }

// CheckDir reports whether path's directory exists and takes new files, by creating and
// removing a temporary file there as Write does: a program that would lose its state at the
// first save can refuse to start instead.
func CheckDir(path string) error {
	dir, base := split(path)
	f, err := os.CreateTemp(dir, TempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("directory %s is missing or not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("directory %s: remove test file: %w", dir, err)
	}
	return nil
}

// RemoveStale removes the temporary files of writes to path that never finished (the
// program was killed mid-write) and returns how many it removed. Only the names Write makes
// for path are touched: TempPrefix(name) followed by digits, regular files.
func RemoveStale(path string) (int, error) {
	dir, base := split(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list %s for stale temporary files: %w", dir, err)
	}
	prefix := TempPrefix(base)
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

// split is path's directory ("." for a bare name) and file name.
func split(path string) (dir, name string) {
	dir, name = filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return dir, name
}
