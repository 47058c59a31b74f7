package session

import (
	"net"
	"syscall"
)

// cork sets or clears TCP_CORK on c. Corked for the length of a sendfile batch, the kernel
// fills whole segments (64 KiB on loopback) across blocks instead of pushing one at the end
// of each block's sendfile: a quarter of the segments, the ACKs and the downloader's
// wake-ups for the same bytes. Clearing it sends what is held at once. Errors are ignored:
// a socket that cannot be corked is served block by block, as before.
func cork(c *net.TCPConn, on bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	})
}
