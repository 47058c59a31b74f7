package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestFastPathLogsAndMetricsAsNetHTTP checks that the access log lines and the metrics are
// the same whichever path served the requests.
func TestFastPathLogsAndMetricsAsNetHTTP(t *testing.T) {
	fast, plain := newPair(t, pairOpts{})
	raw := rawGet("/announce?"+annQ(ihB, "-TR3000-aaaaaaaaaaaa", 6881, "0"),
		"User-Agent: Transmission/3.00", `Referer: http://site/"x"`, "X-Forwarded-For: 203.0.113.9") +
		rawGet("/scrape?info_hash="+esc(ihB), "user-agent: a\tb", "X-Real-IP: 2001:db8::1") +
		rawGet("/announce?info_hash=bad") +
		rawGet("/scrape?info_hash=bad") +
		"GET /scrape?info_hash=" + esc(ihA) + " HTTP/1.0\r\nUser-Agent: Enhanced-CTorrent/dnh3.3.2\r\n\r\n"
	if rs, handed := compare(t, fast, plain, "log", raw); len(rs) != 5 || handed != 0 {
		t.Fatalf("%d replies, %d hand-offs", len(rs), handed)
	}
	fl, pl := logLines(t, fast, 5), logLines(t, plain, 5)
	if !slices.Equal(fl, pl) {
		t.Errorf("access logs differ:\nfast     %q\nnet/http %q", fl, pl)
	}
	if want := `203.0.113.9 - - [T] "GET /announce?`; !strings.HasPrefix(fl[0], want) || !strings.HasSuffix(fl[0], `"http://site/\"x\"" "Transmission/3.00"`) {
		t.Errorf("first line %q", fl[0])
	}
	fm, pm := metrics(t, fast.reg), metrics(t, plain.reg)
	if !slices.Equal(fm, pm) {
		t.Errorf("metrics differ:\nfast     %q\nnet/http %q", fm, pm)
	}
	if !slices.Contains(fm, `webswarm_tracker_request_duration_seconds{frontend="http",kind="scrape"} count 3`) {
		t.Errorf("no scrape latencies in %q", fm)
	}
}

// logLines waits (bounded) for at least n lines in sd's access log and returns them with
// their time stamps replaced by [T].
func logLines(t *testing.T, sd *side, n int) []string {
	t.Helper()
	stamp := regexp.MustCompile(`\[[^]]*\]`)
	var ls []string
	// The log is flushed every second.
	testenv.WaitFor(t, 5*time.Second, "access log lines", func() error {
		b, err := os.ReadFile(sd.path)
		if err != nil {
			return err
		}
		ls = strings.Split(strings.TrimSpace(stamp.ReplaceAllString(string(b), "[T]")), "\n")
		if len(ls) < n {
			return fmt.Errorf("%d lines", len(ls))
		}
		return nil
	})
	return ls
}

// metrics lists a registry's counters and gauges with their values, and its histograms with
// their sample counts (durations differ from run to run).
func metrics(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out = append(out, fmt.Sprintf("%s %g", name, m.GetCounter().GetValue()))
			case dto.MetricType_GAUGE:
				out = append(out, fmt.Sprintf("%s %g", name, m.GetGauge().GetValue()))
			case dto.MetricType_HISTOGRAM:
				out = append(out, fmt.Sprintf("%s count %d", name, m.GetHistogram().GetSampleCount()))
			}
		}
	}
	return out
}

// startFast serves a fresh Handler with the fast path, with the given timeouts.
func startFast(t *testing.T, readHeader, idle time.Duration) (*Server, string, <-chan error) {
	t.Helper()
	h := newHandlerTB(t)
	fs := NewServer(h, &http.Server{ReadHeaderTimeout: readHeader, IdleTimeout: idle, ErrorLog: log.New(io.Discard, "", 0)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fs.Serve(l) }()
	t.Cleanup(func() { fs.Close() })
	return fs, l.Addr().String(), done
}

// closedByServer waits (bounded) until the server closes c, and returns what it sent.
func closedByServer(t *testing.T, c net.Conn, what string) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server did not close the connection (read %q)", what, b)
	}
	return string(b)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readReply reads one reply on a kept-alive connection.
func readReply(t *testing.T, br *bufio.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestFastPathTimeouts: a client that sends nothing, one that sends its head a byte at a
// time (slowloris) and one that stays idle after a reply are all cut off.
func TestFastPathTimeouts(t *testing.T) {
	_, addr, _ := startFast(t, 300*time.Millisecond, 300*time.Millisecond)

	if out := closedByServer(t, dial(t, addr), "silent client"); out != "" {
		t.Errorf("silent client got %q", out)
	}

	slow := dial(t, addr)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		head := "GET /announce?" + strings.Repeat("a", 200)
		for i := 0; i < len(head); i++ {
			if _, err := slow.Write([]byte{head[i]}); err != nil {
				return // closed by the server
			}
			time.Sleep(20 * time.Millisecond) // the pace of the attack; no wait on the server
		}
	}()
	if out := closedByServer(t, slow, "slowloris"); out != "" {
		t.Errorf("slowloris got %q", out)
	}
	slow.Close()
	<-wrote

	c := dial(t, addr)
	io.WriteString(c, rawGet("/scrape"))
	if resp := readReply(t, bufio.NewReader(c)); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("reply %d, close %v", resp.StatusCode, resp.Close)
	}
	if out := closedByServer(t, c, "idle client"); out != "" {
		t.Errorf("idle client got %q", out)
	}
}

// TestFastPathShutdown: Shutdown closes idle connections (the fast path's and net/http's),
// lets a request being read finish with "Connection: close", and ends Serve.
func TestFastPathShutdown(t *testing.T) {
	fs, addr, done := startFast(t, 5*time.Second, 5*time.Second)
	idle := dial(t, addr)
	io.WriteString(idle, rawGet("/scrape"))
	readReply(t, bufio.NewReader(idle))
	handed := dial(t, addr)
	io.WriteString(handed, rawGet("/healthz"))
	if resp := readReply(t, bufio.NewReader(handed)); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	busy := dial(t, addr)
	full := rawGet("/scrape")
	io.WriteString(busy, full[:10])
	waitActive(t, fs, busy)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- fs.Shutdown(ctx)
	}()
	closedByServer(t, idle, "idle fast-path connection")
	closedByServer(t, handed, "idle handed-over connection")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	io.WriteString(busy, full[10:])
	out := closedByServer(t, busy, "busy connection")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "\r\nConnection: close\r\n") {
		t.Errorf("reply during shutdown: %q", out)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting after Shutdown")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := fs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// TestFastPathShutdownDeadlineAndClose: a client holding a request half-sent outlives
// Shutdown's context; Close then ends it.
func TestFastPathShutdownDeadlineAndClose(t *testing.T) {
	fs, addr, done := startFast(t, time.Minute, time.Minute)
	c := dial(t, addr)
	io.WriteString(c, "GET /scr")
	waitActive(t, fs, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := fs.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if err := fs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closedByServer(t, c, "after Close")
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// waitActive waits until the server has read from the client end c.
func waitActive(t *testing.T, fs *Server, c net.Conn) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "the server reading "+c.LocalAddr().String(), func() error {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for rc := range fs.conns {
			if rc.c.RemoteAddr().String() == c.LocalAddr().String() && (rc.state.Load() == connActive || rc.state.Load() == connHead) {
				return nil
			}
		}
		return errors.New("not yet")
	})
}

// TestFastPathClientThatNeverReads: a client that pipelines requests and never reads the
// replies is cut off once the socket buffers are full and the write deadline passes. (What
// the client then sees depends on TCP's zero-window and reset rules, so the test looks at
// the server's side.)
func TestFastPathClientThatNeverReads(t *testing.T) {
	h := newHandlerTB(t, func(c *Config) { c.WriteTimeout = 300 * time.Millisecond })
	fs := NewServer(h, &http.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go fs.Serve(l)
	t.Cleanup(func() { fs.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4096)
	batch := strings.Repeat(rawGet("/scrape?info_hash="+esc(ihB)), 100)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for {
			if _, err := io.WriteString(c, batch); err != nil {
				return // closed: by the server, or by this test at its end
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-wrote })
	conns := func() int {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		return len(fs.conns)
	}
	testenv.WaitFor(t, 5*time.Second, "the connection accepted", func() error {
		if conns() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	testenv.WaitFor(t, 10*time.Second, "the server to drop the client that never reads", func() error {
		if n := conns(); n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
}
