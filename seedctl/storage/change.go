package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrChanged: a payload file is not the file Files verified against (another inode, size,
// modification or change time) and must not be served before it is checked again.
var ErrChanged = errors.New("payload file changed")

// ChangeKind says how a payload file changed.
type ChangeKind uint8

// Kinds of change, as Changes reports them (and metrics label them).
const (
	// Modified: the same file, written (size kept or grown, new mtime or ctime).
	Modified ChangeKind = iota + 1
	// Truncated: the same file, now shorter than the torrent says.
	Truncated
	// Deleted: nothing (or no regular file) at the path any more.
	Deleted
	// Replaced: another file at the path (rename over it, or deleted and created again).
	Replaced
)

var changeNames = [...]string{Modified: "modified", Truncated: "truncated", Deleted: "deleted", Replaced: "replaced"}

// String is the kind's name: modified, truncated, deleted or replaced.
func (k ChangeKind) String() string {
	if int(k) < len(changeNames) && changeNames[k] != "" {
		return changeNames[k]
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// ChangeKinds lists every kind, for metrics that pre-create their labels.
var ChangeKinds = []ChangeKind{Modified, Truncated, Deleted, Replaced}

// Change is one layout file found different from its baseline.
type Change struct {
	File int
	Kind ChangeKind
	// Again: not seen to change, but reported once more now that it has been quiet since
	// a change seen within racyWindow of its last write (Kind is Modified).
	Again bool
	now   fileState
	at    int64 // Unix ns just before the stat that saw now
}

// racyWindow: a file whose last change (ctime) is this close to the stat that saw it may
// be written again within the same tick of the file system's clock, a write no later stat
// can tell apart. Such a baseline is "racy" (as git's index entries): once the file has
// been quiet this long, Changes reports it once more, so that its pieces are hashed from
// what is on disk for good. Coarse clocks tick every 1-10 ms.
const racyWindow = 100 * time.Millisecond

// fileState is what Files knows of a file on disk: enough to tell that it is not the file
// it was (ctime moves on every write, even one that puts the mtime back; dev and inode
// move when another file is renamed over the path).
type fileState struct {
	exists             bool
	regular            bool
	size, mtime, ctime int64
	dev, ino           uint64
}

// stamp is the part of st a resume record keeps.
func (st fileState) stamp() FileStamp {
	if !st.exists {
		return FileStamp{Size: -1}
	}
	return FileStamp{Size: st.size, ModTime: st.mtime}
}

func stateOf(fi fs.FileInfo) fileState {
	st := fileState{exists: true, regular: fi.Mode().IsRegular(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	st.ctime, st.dev, st.ino = sysState(fi)
	return st
}

// statPath returns the state of the file at path (not existing when stat fails with
// fs.ErrNotExist).
func statPath(path string) (fileState, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	return stateOf(fi), nil
}

// snapshot records the baseline of every file: the state the verified pieces vouch for.
func (f *Files) snapshot() error {
	f.base = make([]fileState, len(f.l.Files))
	f.racy = make([]bool, len(f.l.Files))
	for i, file := range f.l.Files {
		if file.Pad {
			continue
		}
		st, err := statPath(f.paths[i])
		if err != nil {
			return err
		}
		f.base[i] = st
	}
	return nil
}

// sameFile reports whether an open file's fstat still matches layout file i's baseline.
// Files opened for writing change under our own writes, so only their identity counts.
func (f *Files) sameFile(i int, fi fs.FileInfo) bool {
	now := stateOf(fi)
	f.baseMu.Lock()
	b := f.base[i]
	f.baseMu.Unlock()
	if f.write {
		return now.dev == b.dev && now.ino == b.ino
	}
	return now == b
}

// Changes stats every payload file by path and returns those that differ from their
// baseline (the state when Open ran, or when Rebase last accepted them): dst is appended
// to. A cached handle of a changed file is dropped, so that the next read opens what the
// path names now. Until Rebase, reads of a changed file that needs opening fail with
// ErrChanged. A file Files itself wrote since the last call is not reported for a new
// size or time (only for another inode, a deletion or a truncation): the download that
// wrote it has hashed what it wrote.
func (f *Files) Changes(dst []Change) ([]Change, error) {
	for i, file := range f.l.Files {
		if file.Pad {
			continue
		}
		// The flag is taken before the stat: a write after the stat sets it again for
		// the next call, rather than passing for someone else's.
		wrote := f.slots[i].wrote.Swap(false)
		at := time.Now().UnixNano()
		now, err := statPath(f.paths[i])
		if err != nil {
			f.slots[i].wrote.Store(wrote)
			return dst, fmt.Errorf("stat %s: %w", f.paths[i], err)
		}
		f.baseMu.Lock()
		b := f.base[i]
		racy := f.racy[i]
		if now != b && wrote && now.exists && now.dev == b.dev && now.ino == b.ino && now.size >= file.Length {
			f.base[i] = now // our own writes
			b = now
		}
		f.baseMu.Unlock()
		if now == b && (!racy || at-now.ctime < int64(racyWindow)) {
			continue
		}
		c := Change{File: i, now: now, at: at, Again: now == b}
		switch {
		case !now.exists || !now.regular:
			c.Kind = Deleted
		case b.exists && (now.dev != b.dev || now.ino != b.ino):
			c.Kind = Replaced
		case now.size < file.Length:
			c.Kind = Truncated
		default:
			c.Kind = Modified
		}
		f.drop(i)
		dst = append(dst, c)
	}
	return dst, nil
}

// Rebase makes the states Changes observed the files' new baselines: from then on reads
// open them again, and Stamps vouches for them. Call it once the pieces of those files
// are no longer counted as verified, and verify them again after.
func (f *Files) Rebase(changes []Change) {
	f.baseMu.Lock()
	for _, c := range changes {
		f.base[c.File] = c.now
		racy := c.now.exists && c.at-c.now.ctime < int64(racyWindow)
		if racy != f.racy[c.File] {
			f.racy[c.File] = racy
			if racy {
				f.racyN.Add(1)
			} else {
				f.racyN.Add(-1)
			}
		}
	}
	f.baseMu.Unlock()
	for _, c := range changes {
		f.drop(c.File) // a handle opened between Changes and now is of the old file
	}
}

// Racy reports whether a file changed so recently when Changes last saw it that it must be
// looked at again once quiet (see racyWindow): the caller calls Changes again soon, even
// without a notification.
func (f *Files) Racy() bool { return f.racyN.Load() > 0 }

// Stamps returns the baseline size and modification time of every layout file, in layout
// order, as a resume record keeps them: what the files were when the pieces were verified,
// not what they are now (a file changed since then must not be vouched for).
func (f *Files) Stamps() []FileStamp {
	out := make([]FileStamp, len(f.base))
	f.baseMu.Lock()
	defer f.baseMu.Unlock()
	for i, st := range f.base {
		if !f.l.Files[i].Pad {
			out[i] = st.stamp()
		}
	}
	return out
}

// drop removes layout file i's handle from the cache (reads in flight finish on it).
func (f *Files) drop(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, j := range f.open {
		if j == i {
			f.open[k] = f.open[len(f.open)-1]
			f.open = f.open[:len(f.open)-1]
			f.releaseLocked(f.slots[i].h.Swap(nil))
			return
		}
	}
}
