//go:build !linux

package httpapi

import "net"

// serveInline reports false: serving connections on the accepting goroutine is Linux's.
func (s *Server) serveInline(*net.TCPListener) (bool, error) { return false, nil }
