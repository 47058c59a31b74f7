//go:build !linux

package storage

import (
	"fmt"
	"io"
	"os"
)

func readFile(path string, limit int64) ([]byte, FileStamp, error) {
	// Opening a FIFO blocks until a writer comes: refuse what is not a regular file before
	// opening it (the Linux version opens without blocking and needs no extra stat).
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, FileStamp{Size: st.Size(), ModTime: st.ModTime().UnixNano()}, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, FileStamp{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, FileStamp{}, err
	}
	if !st.Mode().IsRegular() {
		return nil, FileStamp{}, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, FileStamp{}, fmt.Errorf("read %s: %w", path, err)
	}
	return data, FileStamp{Size: st.Size(), ModTime: st.ModTime().UnixNano()}, nil
}
