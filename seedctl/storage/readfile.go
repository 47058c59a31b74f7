package storage

import (
	"errors"
	"fmt"
)

// ErrTooLarge is wrapped by ReadFile's error for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ReadFile reads the whole regular file at path, at most limit bytes, and returns its
// contents with its size and modification time as read. It is os.ReadFile made cheap for
// the many small files an agent reads at start-up (a .torrent and a resume record per
// torrent): on Linux it opens, fstats, reads and closes with plain system calls, without
// registering the descriptor with the runtime's poller, and sizes its buffer from the
// fstat. A missing file is an error wrapping fs.ErrNotExist; a directory, device or FIFO
// ErrNotRegular (a FIFO is opened without blocking, so no writer is waited for); a file
// over limit ErrTooLarge. With ErrNotRegular and ErrTooLarge the stamp is the file's, so
// that a caller can skip it until it changes.
func ReadFile(path string, limit int64) ([]byte, FileStamp, error) {
	data, st, err := readFile(path, limit)
	if err != nil {
		return nil, st, err
	}
	if int64(len(data)) > limit {
		return nil, FileStamp{}, fmt.Errorf("%s: %w: over %d bytes", path, ErrTooLarge, limit)
	}
	return data, st, nil
}
