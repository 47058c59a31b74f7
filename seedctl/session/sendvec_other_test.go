//go:build !linux

package session

import (
	"net"
	"testing"
)

// segmentsIn reports no count: TCP_INFO's segment counters are Linux's.
func segmentsIn(testing.TB, net.Conn) (uint32, bool) { return 0, false }
