//go:build !linux

package httpapi

import "net"

// writeLast writes the last reply of a connection that is about to be closed.
func writeLast(c net.Conn, p []byte) error {
	_, err := c.Write(p)
	return err
}
