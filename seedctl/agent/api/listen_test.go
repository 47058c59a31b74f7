package api_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
)

// serveUnix starts the API for a fake on a socket in a fresh directory.
func serveUnix(t *testing.T, c agent.Controller) (*api.Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	s, err := api.Start(c, api.Config{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	return s, sock
}

func shutdown(t *testing.T, s *api.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestUnixSocketModeAndRemoval(t *testing.T) {
	dir := t.TempDir()
	s, err := api.Start(newFake(), api.Config{StateDir: dir}) // the default socket under the state dir
	if err != nil {
		t.Fatal(err)
	}
	sock := agent.SocketPath(dir)
	st, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", st.Mode())
	}
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	if s, err := c.Status(ctx(t)); err != nil || s.Version != "test" {
		t.Fatalf("status over the socket: %+v, %v", s, err)
	}
	// Nothing else is left in the state directory (the private bind directory is gone).
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("state dir holds %d entries, want only the socket", len(ents))
	}
	shutdown(t, s)
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
	if _, err := c.Status(ctx(t)); !errors.Is(err, api.ErrNoAgent) {
		t.Errorf("status after shutdown: %v, want ErrNoAgent", err)
	}
}

// staleSocket leaves a socket file at path that nothing listens on, as a killed agent does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("stale socket still answers")
	}
}

func TestUnixStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	staleSocket(t, sock)
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	if _, err := c.Status(ctx(t)); !errors.Is(err, api.ErrNoAgent) || !strings.Contains(err.Error(), sock) {
		t.Errorf("status on a stale socket: %v, want ErrNoAgent naming the socket", err)
	}
	s, err := api.Start(newFake(), api.Config{Socket: sock})
	if err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	defer shutdown(t, s)
	if _, err := c.Status(ctx(t)); err != nil {
		t.Errorf("status after replacing the stale socket: %v", err)
	}
}

func TestUnixLiveSocketNotReplaced(t *testing.T) {
	_, sock := serveUnix(t, newFake())
	before, _ := os.Lstat(sock)
	_, err := api.ListenUnix(sock)
	if !errors.Is(err, api.ErrAgentRunning) {
		t.Fatalf("second listener: %v, want ErrAgentRunning", err)
	}
	after, err := os.Lstat(sock)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the live socket was touched: %v", err)
	}
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	if _, err := c.Status(ctx(t)); err != nil {
		t.Errorf("first agent no longer answers: %v", err)
	}
}

func TestUnixNotASocketLeftAlone(t *testing.T) {
	dir := t.TempDir()
	for _, mk := range []func(p string) error{
		func(p string) error { return os.WriteFile(p, []byte("precious"), 0o600) },
		func(p string) error { return os.Mkdir(p, 0o700) },
		func(p string) error { return os.Symlink("/etc/passwd", p) },
	} {
		p := filepath.Join(dir, "agent.sock")
		if err := mk(p); err != nil {
			t.Fatal(err)
		}
		before, _ := os.Lstat(p)
		if l, err := api.ListenUnix(p); err == nil {
			l.Close()
			t.Fatalf("listened over a %v", before.Mode())
		} else if !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("error %q does not say why", err)
		}
		after, err := os.Lstat(p)
		if err != nil || !os.SameFile(before, after) {
			t.Errorf("%v was replaced", before.Mode())
		}
		os.RemoveAll(p)
	}
}

func TestUnixCloseKeepsAReplacement(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	a, err := api.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(sock) // an operator removed it and started another agent
	b, err := api.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("closing the old listener removed the new socket: %v", err)
	}
	b.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("closing the listener left its socket: %v", err)
	}
}

func TestUnixPathTooLong(t *testing.T) {
	p := filepath.Join(t.TempDir(), strings.Repeat("d", 100), "agent.sock")
	if _, err := api.ListenUnix(p); err == nil || !strings.Contains(err.Error(), "shorter --state") {
		t.Errorf("long socket path: %v", err)
	}
}

func TestUnixMissingDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing", "agent.sock")
	if l, err := api.ListenUnix(p); err == nil {
		l.Close()
		t.Error("listened in a directory that does not exist")
	}
}

func TestListenTCPLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "localhost:0", "[::]:0", "example.org:80", "127.0.0.1"} {
		if l, err := api.ListenTCP(addr); err == nil {
			l.Close()
			t.Errorf("ListenTCP(%q) accepted", addr)
		}
	}
	l, err := api.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestStartConfigErrors(t *testing.T) {
	if _, err := api.Start(newFake(), api.Config{}); !errors.Is(err, agent.ErrInvalid) {
		t.Errorf("no socket, no state dir: %v", err)
	}
	if _, err := api.Start(newFake(), api.Config{TCP: "127.0.0.1:0"}); !errors.Is(err, agent.ErrInvalid) {
		t.Errorf("TCP without a token file: %v", err)
	}
	if _, err := api.Start(newFake(), api.Config{TCP: "127.0.0.1:0", TokenFile: filepath.Join(t.TempDir(), "none")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("TCP with a missing token file: %v", err)
	}
}
