package storage

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// maxSendfile is the most one sendfile(2) call is asked for (Linux moves at most about 2 GiB).
const maxSendfile = 1 << 30

// sendFile sends n bytes of file at off to c with sendfile(2), passing the offset explicitly
// so that the file's shared position is neither used nor moved. It waits for the socket
// through Go's poller (deadlines apply). handled is false when nothing was sent because
// sendfile cannot work here; the caller then copies.
func sendFile(c *net.TCPConn, file *os.File, off, n int64) (sent int64, handled bool, err error) {
	cc, err := c.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	fc, err := file.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	handled = true
	var serr error
	cerr := fc.Control(func(ffd uintptr) {
		err = cc.Write(func(cfd uintptr) bool {
			for sent < n {
				k, e := unix.Sendfile(int(cfd), int(ffd), &off, int(min(n-sent, maxSendfile)))
				switch {
				case e == unix.EINTR:
					continue
				case e == unix.EAGAIN:
					return false // wait until the socket is writable
				case e != nil && sent == 0 && (e == unix.EINVAL || e == unix.ENOSYS || e == unix.EOPNOTSUPP):
					handled = false
					return true
				case e != nil:
					serr = os.NewSyscallError("sendfile", e)
					return true
				case k == 0:
					return true // end of file: the caller reports the short file
				}
				sent += int64(k)
			}
			return true
		})
	})
	return sent, handled, errors.Join(serr, err, cerr)
}

// sendMore writes p to c with MSG_MORE: the kernel holds it to go out in one segment with what
// follows (the sendfile of a block). handled is false when nothing was sent and the caller
// should write p another way.
func sendMore(c *net.TCPConn, p []byte) (sent int64, handled bool, err error) {
	cc, err := c.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var serr error
	err = cc.Write(func(fd uintptr) bool {
		for int(sent) < len(p) {
			k, e := unix.SendmsgN(int(fd), p[sent:], nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN:
				return false
			case e != nil:
				serr = os.NewSyscallError("sendmsg", e)
				return true
			}
			sent += int64(k)
		}
		return true
	})
	return sent, true, errors.Join(serr, err)
}
