//go:build linux

package storage

import (
	"fmt"
	"io/fs"
	"syscall"
)

func readFile(path string, limit int64) ([]byte, FileStamp, error) {
	var fd int
	var err error
	for {
		// O_NONBLOCK: opening a FIFO for reading blocks until a writer comes, which would
		// pin the caller (the agent's scan, a control API request) for good; with it the
		// open returns at once and the fstat below refuses the FIFO. Regular files ignore
		// the flag.
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, FileStamp{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, FileStamp{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	stamp := FileStamp{Size: int64(st.Size), ModTime: int64(st.Mtim.Sec)*1e9 + int64(st.Mtim.Nsec)}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, stamp, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if int64(st.Size) > limit {
		return nil, stamp, fmt.Errorf("%s: %w: %d bytes, limit %d", path, ErrTooLarge, st.Size, limit)
	}
	// One byte more than the size: a file that grew since the fstat is still read to its
	// end (or to limit+1, which the caller refuses), and a read returning less than the
	// room left ends the loop without a last read of zero bytes for most files.
	buf := make([]byte, 0, st.Size+1)
	for int64(len(buf)) <= limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, FileStamp{}, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, stamp, nil
}
