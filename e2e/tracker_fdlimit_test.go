package e2e

// Slowloris at the file descriptor limit: the built tracker runs under a low RLIMIT_NOFILE
// (prlimit) while more slow connections than it has descriptors hold on; a keep-alive client
// must still get its answers.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestTrackerSlowlorisAtFdLimit: with 256 descriptors and 400 connections that send half a
// request head and then nothing (the attack had 3,000 against 2,048), keep-alive announces
// and "Connection: close" announces are answered, and the tracker says how many slow
// connections it closed to make room.
func TestTrackerSlowlorisAtFdLimit(t *testing.T) {
	const nofile, slow = 256, 400
	prlimit := testenv.Require(t, "prlimit", "util-linux")
	bin := testenv.Build(t, "./tracker")
	dir := t.TempDir()
	port := testenv.FreePort(t, "127.0.0.1")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--", bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dfile", dir+"/state.bencode", "--nat_check", "0",
		"--logfile", "", "--socket_timeout", "60")
	proc := testenv.StartCmd(t, cmd)
	testenv.WaitFor(t, 15*time.Second, "tracker /healthz", func() error {
		if done, err := proc.Exited(); done {
			t.Fatalf("tracker exited during start-up (%v):\n%s", err, testenv.Tail([]byte(proc.Output()), 4000))
		}
		_, err := trackerGet(base + "/healthz")
		return err
	})
	if max, err := monMetric(base+"/metrics", "webswarm_tracker_http_connections_max"); err != nil || max <= 0 || max >= nofile {
		t.Fatalf("connection cap %v (%v), want one below the fd limit %d", max, err, nofile)
	}

	// The attack: bounded in count (slow) and time (a deadline for all of it).
	deadline := time.Now().Add(30 * time.Second)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < slow && time.Now().Before(deadline); i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Deadline: deadline}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /announce?info_hash="); err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
	}
	if len(conns) < slow {
		t.Fatalf("only %d slow connections opened in time", len(conns))
	}
	// Every slow connection the tracker could take is taken (accepted, or closed to make
	// room) before the clients come: they must not merely come first.
	testenv.WaitFor(t, 20*time.Second, "the slow connections to be accepted or evicted", func() error {
		open, err1 := monMetric(base+"/metrics", "webswarm_tracker_http_connections")
		ev, err2 := monMetric(base+"/metrics", "webswarm_tracker_http_connections_evicted_total")
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%v %v", err1, err2)
		}
		if int(open+ev) < slow {
			return fmt.Errorf("%v open, %v evicted", open, ev)
		}
		return nil
	})

	// A keep-alive client: ten announces, on one connection.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 4)}}).DialContext}}
	defer client.CloseIdleConnections()
	ih := tpHash("slowloris")
	reused := 0
	for i := range 10 {
		req, err := http.NewRequest("GET", base+"/announce?"+announceQuery(ih, "-KA0001-keepalive001", 7001, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				if ci.Reused {
					reused++
				}
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("keep-alive announce %d beside %d slow connections: %v", i, slow, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r announceResp
		if err != nil || resp.StatusCode != 200 || bencode.Unmarshal(body, &r) != nil || r.FailureReason != "" {
			t.Fatalf("keep-alive announce %d: %d %v %q", i, resp.StatusCode, err, body)
		}
	}
	if reused == 0 {
		t.Errorf("the keep-alive client never reused its connection")
	}
	// And a "Connection: close" one.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /announce?%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", announceQuery(ih, "-KA0001-closeclose01", 7002, 1))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.Contains(string(b), "8:intervali") {
		t.Errorf("Connection: close announce: %q", b)
	}
	if ev, err := monMetric(base+"/metrics", "webswarm_tracker_http_connections_evicted_total"); err != nil || ev < 1 {
		t.Errorf("evicted connections %v (%v), want some", ev, err)
	}
}

// TestTrackerFdLimitTooLow: a file descriptor limit that leaves no room for connections, or
// a --max_connections above it, stops start-up with a message naming --max_connections.
func TestTrackerFdLimitTooLow(t *testing.T) {
	prlimit := testenv.Require(t, "prlimit", "util-linux")
	bin := testenv.Build(t, "./tracker")
	for _, tc := range []struct {
		nofile int
		extra  []string
	}{
		{64, nil},
		{1024, []string{"--max_connections", "1000"}},
		{1024, []string{"--fcgi", "127.0.0.1:1", "--fcgi_max_connections", "900"}},
	} {
		dir := t.TempDir()
		args := append([]string{fmt.Sprintf("--nofile=%d:%d", tc.nofile, tc.nofile), "--", bin,
			"--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")), "--bind", "127.0.0.1", "--dfile", dir + "/state.bencode"}, tc.extra...)
		// Bounded: a tracker that starts after all is killed (its own process) at the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, prlimit, args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "--max_connections") || !strings.Contains(string(out), "RLIMIT_NOFILE") {
			t.Errorf("nofile %d %v: %v %q; want a failure naming --max_connections and the limit", tc.nofile, tc.extra, err, out)
		}
	}
}
