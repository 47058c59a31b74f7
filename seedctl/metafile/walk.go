package metafile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// WalkRule states, for --help and docs/seedctl.md, which files a torrent gets.
const WalkRule = "Files are taken in byte order of their path (as mktorrent does; --hybrid orders by path component, as BEP 52 requires). " +
	"Hidden files and directories (name starting with '.') are skipped unless --include-hidden, except a PATH named on the command line. " +
	"Symbolic links are followed, as mktorrent does: a link to a file adds the target's bytes under the link's name, a link to a " +
	"directory is walked; a dangling link, a link loop or anything not a regular file or directory is an error (skip it with --exclude)."

// inputFile is one payload file found on disk.
type inputFile struct {
	path    []string // inside the torrent, without the torrent's name
	osPath  string
	size    int64
	modTime time.Time
}

// walkOpts filters the walk.
type walkOpts struct {
	exclude       []string
	includeHidden bool
	// skip is a file never taken (the output .torrent, when it is written inside the payload).
	skip fs.FileInfo
}

// ErrNoFiles is returned when the given paths hold no file to put in a torrent.
var ErrNoFiles = errors.New("no files to put in the torrent")

// collect finds the payload: one regular file (single-file torrent) or the files under one or
// more directories or files (multi-file torrent). name is the torrent's name ("" = derive it).
func collect(paths []string, name string, o walkOpts) (torrentName string, single bool, files []inputFile, err error) {
	for _, g := range o.exclude {
		if _, err := path.Match(g, ""); err != nil {
			return "", false, nil, fmt.Errorf("--exclude %q: %w", g, err)
		}
	}
	if len(paths) == 0 {
		return "", false, nil, errors.New("no PATH given")
	}
	w := &walker{o: o}
	if len(paths) == 1 {
		p := paths[0]
		st, err := os.Stat(p)
		if err != nil {
			return "", false, nil, fmt.Errorf("payload: %w", err)
		}
		torrentName = name
		if torrentName == "" {
			torrentName = DefaultName(p)
		}
		if st.Mode().IsRegular() {
			return torrentName, true, []inputFile{{path: nil, osPath: p, size: st.Size(), modTime: st.ModTime()}}, nil
		}
		if !st.IsDir() {
			return "", false, nil, fmt.Errorf("payload %s: not a regular file or directory", p)
		}
		if err := w.dir(p, nil, st); err != nil {
			return "", false, nil, err
		}
	} else {
		if name == "" {
			return "", false, nil, errors.New("several PATHs make a multi-file torrent: give it a --name")
		}
		torrentName = name
		seen := map[string]string{}
		for _, p := range paths {
			base := filepath.Base(filepath.Clean(p))
			if base == "." || base == ".." || base == string(filepath.Separator) {
				return "", false, nil, fmt.Errorf("payload %s: name a file or directory, not %q", p, base)
			}
			if prev, ok := seen[base]; ok {
				return "", false, nil, fmt.Errorf("payload %s and %s have the same name %q in the torrent", prev, p, base)
			}
			seen[base] = p
			st, err := os.Stat(p)
			if err != nil {
				return "", false, nil, fmt.Errorf("payload: %w", err)
			}
			if err := w.entry(p, []string{base}, st, true); err != nil {
				return "", false, nil, err
			}
		}
	}
	if len(w.files) == 0 {
		return "", false, nil, fmt.Errorf("%s: %w", strings.Join(paths, ", "), ErrNoFiles)
	}
	return torrentName, false, w.files, nil
}

// DefaultName is the torrent name for a payload path: its base name, or for "." and ".." the
// base name of the directory they stand for.
func DefaultName(p string) string {
	name := filepath.Base(filepath.Clean(p))
	if name == "." || name == ".." {
		if abs, err := filepath.Abs(p); err == nil {
			name = filepath.Base(abs)
		}
	}
	return name
}

type walker struct {
	o     walkOpts
	files []inputFile
	stack []fileID // directories being walked, to catch symlink loops
}

type fileID struct{ dev, ino uint64 }

func idOf(st fs.FileInfo) (fileID, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(s.Dev), uint64(s.Ino)}, true
}

func (w *walker) excluded(rel []string) bool {
	base := rel[len(rel)-1]
	full := strings.Join(rel, "/")
	for _, g := range w.o.exclude {
		if ok, _ := path.Match(g, base); ok {
			return true
		}
		if ok, _ := path.Match(g, full); ok {
			return true
		}
	}
	return false
}

// entry adds the file or directory at osPath (already stat'ed, links followed) as rel.
func (w *walker) entry(osPath string, rel []string, st fs.FileInfo, named bool) error {
	if !named {
		if !w.o.includeHidden && strings.HasPrefix(rel[len(rel)-1], ".") {
			return nil
		}
		if w.excluded(rel) {
			return nil
		}
	}
	switch {
	case st.Mode().IsRegular():
		if w.o.skip != nil && os.SameFile(st, w.o.skip) {
			return nil
		}
		w.files = append(w.files, inputFile{path: rel, osPath: osPath, size: st.Size(), modTime: st.ModTime()})
		return nil
	case st.IsDir():
		return w.dir(osPath, rel, st)
	default:
		return fmt.Errorf("payload %s: not a regular file or directory (%v); skip it with --exclude", osPath, st.Mode().Type())
	}
}

func (w *walker) dir(osPath string, rel []string, st fs.FileInfo) error {
	if id, ok := idOf(st); ok {
		if slices.Contains(w.stack, id) {
			return fmt.Errorf("payload %s: symbolic link loop", osPath)
		}
		w.stack = append(w.stack, id)
		defer func() { w.stack = w.stack[:len(w.stack)-1] }()
	}
	ents, err := os.ReadDir(osPath)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(osPath, e.Name())
		sub := append(rel[:len(rel):len(rel)], e.Name())
		if !w.o.includeHidden && strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if w.excluded(sub) {
			continue
		}
		st, err := os.Stat(p) // follows symbolic links
		if err != nil {
			if _, lerr := os.Lstat(p); lerr == nil && errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("payload %s: dangling symbolic link", p)
			}
			return fmt.Errorf("payload: %w", err)
		}
		if err := w.entry(p, sub, st, false); err != nil {
			return err
		}
	}
	return nil
}

// sortV1 orders files by their full path compared as bytes, as mktorrent does, so that the
// same files give the same info-hash.
func sortV1(files []inputFile) {
	slices.SortFunc(files, func(a, b inputFile) int {
		return strings.Compare(strings.Join(a.path, "/"), strings.Join(b.path, "/"))
	})
}

// sortV2 orders files component by component: the order of a BEP 52 file tree, which a
// hybrid's v1 file list must follow.
func sortV2(files []inputFile) {
	slices.SortFunc(files, func(a, b inputFile) int { return slices.Compare(a.path, b.path) })
}
