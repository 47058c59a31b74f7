package e2e

// The FastCGI listener's limits, attacked from outside the built tracker with a hand-rolled
// FastCGI client: PARAMS without end, silent connections, more connections than the cap, and
// the unix socket's default permissions.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// fcgiRecord encodes one FastCGI record (version 1, no padding).
func fcgiRecord(typ byte, id uint16, content []byte) []byte {
	h := []byte{1, typ, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), 0, 0}
	return append(h, content...)
}

// fcgiBegin is a BEGIN_REQUEST record for the responder role, keeping the connection.
func fcgiBegin(id uint16) []byte { return fcgiRecord(1, id, []byte{0, 1, 1, 0, 0, 0, 0, 0}) }

// fcgiPair encodes a name-value pair of PARAMS (both shorter than 128 bytes).
func fcgiPair(name, value string) []byte {
	return append([]byte{byte(len(name)), byte(len(value))}, name+value...)
}

// fcgiGet sends GET uri as FastCGI request id on c and returns the response's STDOUT.
func fcgiGet(c net.Conn, id uint16, uri string) (string, error) {
	var params []byte
	for _, kv := range [][2]string{{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", uri}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REMOTE_ADDR", "127.0.0.9"}, {"REMOTE_PORT", "4000"}, {"HTTP_HOST", "site.test"}} {
		params = append(params, fcgiPair(kv[0], kv[1])...)
	}
	var req []byte
	req = append(req, fcgiBegin(id)...)
	req = append(req, fcgiRecord(4, id, params)...)
	req = append(req, fcgiRecord(4, id, nil)...)
	req = append(req, fcgiRecord(5, id, nil)...)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	var out bytes.Buffer
	for {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return out.String(), err
		}
		n := int(binary.BigEndian.Uint16(h[4:6])) + int(h[6])
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return out.String(), err
		}
		switch h[1] {
		case 6: // STDOUT
			out.Write(body[:binary.BigEndian.Uint16(h[4:6])])
		case 3: // END_REQUEST
			return out.String(), nil
		}
	}
}

// fcgiHealthy dials the FastCGI listener, fails the test unless /healthz answers on the new
// connection, and returns the connection (closed at the test's end).
func fcgiHealthy(t testing.TB, network, addr, when string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if out, err := fcgiGet(c, 1, "/healthz"); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("FastCGI /healthz %s: %q %v", when, out, err)
	}
	return c
}

// procRSS returns the resident set of process pid in bytes.
func procRSS(t testing.TB, pid int) int64 { return procStatus(t, pid, "VmRSS") }

// procStatus returns a size field of /proc/PID/status (VmRSS, VmHWM, ...) in bytes.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	v, err := readStatus(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readRSS returns the resident set of process pid in bytes.
func readRSS(pid int) (int64, error) { return readStatus(pid, "VmRSS") }

// readStatus returns a size field of /proc/PID/status in bytes.
func readStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// closedByPeer waits up to d for c to be closed by the other side (EOF or reset).
func closedByPeer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	var b [64]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// TestTrackerFastCGIParamsBound streams PARAMS without end at the FastCGI socket: the tracker
// cuts the connection after --fcgi_max_params, its RSS stays put, the metric says why, and
// the socket was created 0660 without --fcgi_socket_mode.
func TestTrackerFastCGIParamsBound(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "tracker.sock")
	tr := startTracker(t, "--fcgi", "unix:"+sock)
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 {
		t.Errorf("FastCGI socket mode %v by default, want 0660", st.Mode().Perm())
	}
	c := fcgiHealthy(t, "unix", sock, "before the attack")
	rss0 := procRSS(t, tr.Proc.Cmd.Process.Pid)

	// 64 MiB of PARAMS in 64 KiB records (the attack sent 412 MB), each a valid name-value
	// pair, for a request that never ends them.
	const limit = 64 << 20
	pair := fcgiPair("HTTP_X", "")
	pair = append(pair[:1], 0x80, 0, 0xff, 0xf0) // value length 65520 in the 4-byte form
	pair = append(pair, "HTTP_X"...)
	rec := fcgiRecord(4, 2, append(pair, make([]byte, 65535-len(pair))...))
	sent := 0
	c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(fcgiBegin(2)); err != nil {
		t.Fatal(err)
	}
	for sent < limit {
		n, err := c.Write(rec)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= limit {
		t.Errorf("the tracker took %d MiB of PARAMS for one request without closing the connection", sent>>20)
	}
	if !closedByPeer(c, 20*time.Second) {
		t.Errorf("the connection is still open after %d bytes of PARAMS", sent)
	}
	if rss := procRSS(t, tr.Proc.Cmd.Process.Pid); rss > rss0+16<<20 {
		t.Errorf("RSS grew from %d to %d MiB", rss0>>20, rss>>20)
	}
	if v, err := monMetric(tr.Base+"/metrics", `webswarm_tracker_fastcgi_closed_total{reason="params_too_large"}`); err != nil || v != 1 {
		t.Errorf("params_too_large closes: %v %v, want 1", v, err)
	}
	fcgiHealthy(t, "unix", sock, "after the attack") // the listener still serves
}

// TestTrackerFastCGISilentConns opens silent FastCGI connections: those beyond
// --fcgi_max_connections close the ones idle longest, the rest are closed after
// --socket_timeout, and a request on a fresh connection is answered throughout.
func TestTrackerFastCGISilentConns(t *testing.T) {
	const capConns, silent = 20, 50
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
	tr := startTracker(t, "--fcgi", addr, "--fcgi_max_connections", strconv.Itoa(capConns), "--socket_timeout", "3")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range silent {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	fcgiHealthy(t, "tcp", addr, fmt.Sprintf("beside %d silent connections", silent))
	// Every silent connection is closed: the oldest evicted, the others timed out.
	for i, sc := range conns {
		if !closedByPeer(sc, 20*time.Second) {
			t.Fatalf("silent connection %d still open after 20 s (--socket_timeout 3)", i)
		}
	}
	evicted, err1 := monMetric(tr.Base+"/metrics", `webswarm_tracker_fastcgi_closed_total{reason="evicted"}`)
	timedOut, err2 := monMetric(tr.Base+"/metrics", `webswarm_tracker_fastcgi_closed_total{reason="timeout"}`)
	if err1 != nil || err2 != nil || evicted < silent+1-capConns || evicted+timedOut < silent {
		t.Errorf("closes: evicted %v (%v), timeout %v (%v); want ≥ %d evicted and %d in all", evicted, err1, timedOut, err2, silent+1-capConns, silent)
	}
}
