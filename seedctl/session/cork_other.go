//go:build !linux

package session

import "net"

// cork does nothing outside Linux: blocks go out as each sendfile ends.
func cork(c *net.TCPConn, on bool) {}
