//go:build !linux

package storage

import (
	"net"
	"os"
)

// sendFile is Linux-only here: elsewhere SendTo copies through a buffer.
func sendFile(c *net.TCPConn, file *os.File, off, n int64) (sent int64, handled bool, err error) {
	return 0, false, nil
}

// sendMore is Linux-only here: elsewhere the prefix is copied in front of the data.
func sendMore(c *net.TCPConn, p []byte) (sent int64, handled bool, err error) {
	return 0, false, nil
}
