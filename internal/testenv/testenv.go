// Package testenv holds what tests that start real programs share: finding an external
// program (skip, or fail under E2E_REQUIRE=1), free loopback ports, bounded polling, and
// processes started and stopped by PID.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require returns the path of program, or ends the test: with a skip naming the Debian
// package, or — when E2E_REQUIRE=1, as in CI — with a failure.
func Require(t testing.TB, program, debPackage string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, program)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	Missing(t, fmt.Sprintf("%s not found (apt-get install %s, or run scripts/test.sh)", program, debPackage))
	return ""
}

// Missing skips the test with reason, or fails it when E2E_REQUIRE=1.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("E2E_REQUIRE") == "1" {
		t.Fatalf("E2E_REQUIRE=1: %s", reason)
	}
	t.Skip(reason)
}

// FreePort returns a TCP port on host that was free a moment ago, on every address (a
// program told to use it may bind the wildcard address) and for UDP too. It is picked at
// random below the kernel's ephemeral range, so the outgoing connections of whatever else
// runs on the machine (a load generator holding thousands) cannot take it between the pick
// and its use, and it is never handed out twice by one test process.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	lo, hi := portRange()
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		portsMu.Lock()
		taken := portsGiven[port]
		portsGiven[port] = true
		portsMu.Unlock()
		if !taken && portFree(host, port) {
			return port
		}
	}
	t.Fatalf("no free port on %s in %d-%d", host, lo, hi)
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// portRange is where FreePort picks: from 10000 up to the start of the ephemeral range
// (net.ipv4.ip_local_port_range), or 20000-30000 when that cannot be read or leaves too
// little room.
func portRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var elo, ehi int
		if _, err := fmt.Sscan(string(b), &elo, &ehi); err == nil && elo > 12000 {
			return 10000, elo
		}
	}
	return 20000, 30000
}

// portFree reports whether port can be bound for TCP on host and on the wildcard address,
// and for UDP on host.
func portFree(host string, port int) bool {
	for _, addr := range []string{net.JoinHostPort(host, strconv.Itoa(port)), net.JoinHostPort("", strconv.Itoa(port))} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
	}
	u, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// WaitFor polls cond every 20 ms until it returns nil or timeout passes; then the test
// fails with what cond last said.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("waiting %v for %s: %v", timeout, what, err)
	}
}

// Poll calls cond every 20 ms until it returns nil or timeout passes, and returns its last error.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Proc is a program started by a test. Its output goes to a log file kept in the test's
// temporary directory and printed when the test fails.
type Proc struct {
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// Start starts name with args in its own process group and registers a cleanup that stops
// it by PID (SIGTERM, then SIGKILL after 5 s).
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, exec.Command(name, args...))
}

// StartCmd is Start for a prepared command (Dir, Env set by the caller).
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), filepath.Base(cmd.Path)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, Log: logf.Name(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			out, _ := os.ReadFile(p.Log)
			t.Logf("--- %s %s (pid %d) output:\n%s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), cmd.Process.Pid, Tail(out, 4000))
		}
	})
	return p
}

// Exited reports whether the process has ended, and its wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs it. Only the
// process this Proc started (and its children) are signalled.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill sends SIGKILL to the process group and waits for the process to end.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Output returns what the process has written so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Tail returns the last n bytes of b as a string.
func Tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// RepoRoot returns the module's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// Build compiles the main package at pkg (e.g. "./tracker") once per test binary and returns
// the executable's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "webswarm-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	buildCache[pkg] = out
	return out
}
