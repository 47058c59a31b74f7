//go:build !linux

package udpapi

import "net"

// batchSize is how many datagrams one read would take: batches are Linux's (recvmmsg).
const batchSize = 32

// batchConn is Linux's; elsewhere every socket is read one datagram at a time.
type batchConn struct{}

func newBatchConn(*net.UDPConn) *batchConn { return nil }

func (s *Server) runBatch(*worker, *batchConn) error { panic("udpapi: no batches here") }
