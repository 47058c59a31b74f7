package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// SocketMode is the permission of the control socket: the agent's user and group may connect.
const SocketMode fs.FileMode = 0o660

// ErrAgentRunning is returned by ListenUnix when an agent already answers on the socket.
var ErrAgentRunning = errors.New("an agent is already running")

// maxSocketPath is the longest unix socket path Linux accepts (sun_path less its NUL).
const maxSocketPath = 107

// probeTimeout bounds the check whether something answers on an existing socket.
const probeTimeout = time.Second

// ListenUnix listens on the unix socket at path. The socket appears with mode SocketMode already
// set (it is bound in a private directory beside path, chmod-ed, then renamed into place), so no
// other user can connect in between. A socket left by a crashed agent is replaced, but only after
// a connection to it is refused; if something answers, the error wraps ErrAgentRunning. Anything
// at path that is not a socket is left alone and reported. Closing the listener removes the
// socket unless another agent has replaced it since.
func ListenUnix(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: the path is %d bytes, unix sockets allow %d: use a shorter --state", path, len(path), maxSocketPath)
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".sock")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	bind := filepath.Join(tmp, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: bind, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	l.SetUnlinkOnClose(false) // the name it was bound to will not exist; unixListener removes path
	fail := func(err error) (net.Listener, error) {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(bind, SocketMode); err != nil {
		return fail(err)
	}
	if err := os.Rename(bind, path); err != nil {
		return fail(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: l, path: path, st: st}, nil
}

// checkStale removes a socket at path that nobody answers on.
func checkStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: a %s is in the way (not a socket): remove it", path, describeType(st.Mode()))
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: %w (it answers on the socket)", path, ErrAgentRunning)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// EACCES, a timeout...: whether an agent is there cannot be told, so nothing is removed.
		return fmt.Errorf("control socket %s exists and cannot be probed: %w", path, err)
	}
	// Stale: its agent is gone. Rename-over replaces it; removing it now keeps a failed start
	// from leaving it behind for the next probe.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the stale control socket: %w", err)
	}
	return nil
}

func describeType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}

// unixListener removes its socket on Close, unless the file at path is no longer that socket.
type unixListener struct {
	*net.UnixListener
	path string
	st   fs.FileInfo
	once sync.Once
}

// Close closes the listener and removes its socket file if it is still the one it created.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if st, serr := os.Lstat(l.path); serr == nil && os.SameFile(st, l.st) {
			_ = os.Remove(l.path)
		}
	})
	return err
}

// ListenTCP listens on addr ("127.0.0.1:PORT", "[::1]:PORT"; port 0 picks one), which must be a
// loopback address: the API can pause and remove torrents and is never offered to the network.
// Serve it through Guard with AllowedHosts of the listener's address.
func ListenTCP(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("control address %q: want a loopback IP address like 127.0.0.1:PORT", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control address: %w", err)
	}
	return l, nil
}
