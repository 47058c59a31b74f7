package session

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// segmentsIn is how many TCP segments c has received (TCP_INFO), for BenchmarkServe.
func segmentsIn(tb testing.TB, c net.Conn) (uint32, bool) {
	tb.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		tb.Fatal(err)
	}
	if ierr != nil {
		tb.Fatal(ierr)
	}
	return info.Segs_in, true
}
