package testenv

import (
	"fmt"
	"net"
	"strconv"
	"strings"
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
	reply, err := redisInline(addr, "PING")
	if err == nil && reply != "+PONG\r\n" {
		err = fmt.Errorf("PING answered %q", reply)
	}
	return err
}

// redisInline sends one inline command to the Redis at addr and returns the start of its
// reply (up to 4 KiB).
func redisInline(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// StartRedisCluster starts a Redis Cluster of 3 masters and 3 replicas on free ports of
// 127.0.0.1 (cluster-node-timeout 2000 ms, each node stopped by PID when the test ends),
// joins them with `redis-cli --cluster create`, waits for cluster_state:ok on every node,
// and returns the six addresses, masters first.
func StartRedisCluster(t testing.TB) []string {
	t.Helper()
	bin := Require(t, "redis-server", "redis-server")
	cli := Require(t, "redis-cli", "redis-tools")
	dir := t.TempDir()
	var addrs []string
	for range 6 {
		// The cluster bus port is picked too: its default, port+10000, may be taken or fall in
		// the ephemeral range.
		port, bus := strconv.Itoa(FreePort(t, "127.0.0.1")), strconv.Itoa(FreePort(t, "127.0.0.1"))
		Start(t, bin, "--port", port, "--cluster-port", bus, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--daemonize", "no", "--dir", dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+port+".conf",
			"--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0")
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", port))
	}
	for _, a := range addrs {
		WaitFor(t, 10*time.Second, "redis-server "+a+" answering PING", func() error { return RedisPing(a) })
	}
	create := Start(t, cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...)
	select {
	case <-create.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("redis-cli --cluster create did not finish in 60 s:\n%s", Tail([]byte(create.Output()), 2000))
	}
	if _, err := create.Exited(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, Tail([]byte(create.Output()), 2000))
	}
	for _, a := range addrs {
		WaitFor(t, 30*time.Second, "cluster_state:ok at "+a, func() error { return clusterOK(a) })
	}
	return addrs
}

// clusterOK asks the node at addr for CLUSTER INFO and checks cluster_state:ok.
func clusterOK(addr string) error {
	info, err := redisInline(addr, "CLUSTER INFO")
	if err == nil && !strings.Contains(info, "cluster_state:ok") {
		err = fmt.Errorf("cluster not ready: %.80q", info)
	}
	return err
}
