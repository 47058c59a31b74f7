package testenv

import (
	"io"
	"net"
	"testing"
	"time"
)

// SilentPeer listens on ip (a loopback address), accepts every connection and never answers
// nor closes it until the test ends: a port that hangs a tracker's NAT check. It returns the
// port.
func SilentPeer(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// HandshakePeer listens on ip (a loopback address) and answers every BitTorrent handshake
// (BEP 3) with info-hash ih and peer ID id, then closes the connection. It returns the port.
func HandshakePeer(t testing.TB, ip string, ih, id [20]byte) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			var hs [68]byte
			if _, err := io.ReadFull(c, hs[:]); err == nil {
				copy(hs[28:], ih[:])
				copy(hs[48:], id[:])
				_, _ = c.Write(hs[:])
			}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}
