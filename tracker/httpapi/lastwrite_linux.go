package httpapi

import (
	"errors"
	"net"
	"syscall"
)

// writeLast writes the last reply of a connection that is about to be closed. On a TCP
// socket it sends with MSG_MORE, which holds the bytes back for a moment: the close that
// follows then puts its FIN on the same segment, so a "Connection: close" exchange costs one
// packet (and the client one wake-up) less on both ends.
func writeLast(c net.Conn, p []byte) error {
	sc, ok := c.(*net.TCPConn)
	if !ok {
		_, err := c.Write(p)
		return err
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, err := syscall.SendmsgN(int(fd), p, nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return false // the poller waits, within the write deadline
			case err != nil:
				werr = err
				return true
			}
			p = p[n:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
