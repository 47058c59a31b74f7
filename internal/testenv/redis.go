package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// StartRedis starts Debian's redis-server on a free port of 127.0.0.1 (no persistence, its
// files in a temporary directory), waits until it answers PING, and returns its address;
// the test's cleanup stops it by PID. Without redis-server the test skips (fails under
// E2E_REQUIRE=1).
func StartRedis(t testing.TB) string {
	t.Helper()
	bin := Require(t, "redis-server", "redis-server")
	port := FreePort(t, "127.0.0.1")
	Start(t, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--daemonize", "no", "--dir", t.TempDir())
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	WaitFor(t, 10*time.Second, "redis-server answering PING", func() error { return RedisPing(addr) })
	return addr
}

// RedisPing sends PING to the Redis at addr and checks for PONG.
func RedisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
