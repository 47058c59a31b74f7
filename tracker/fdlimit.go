package main

import (
	"fmt"
	"syscall"
)

// fdHeadroom is how many file descriptors the HTTP connection cap leaves free for everything
// else a tracker holds open (listeners, the state file, the access log, --allowed_dir's
// scans, the moment a connection needs two while it moves to its own goroutine): an eighth
// of the limit, at least 64.
func fdHeadroom(nofile uint64) uint64 { return max(64, nofile/8) }

// httpConnCap returns the HTTP connection cap for --max_connections v under the file
// descriptor limit nofile, fcgiConns being what FastCGI may hold (0 without --fcgi): v
// itself, or for -1 what the fd limit leaves after the headroom and FastCGI.
func httpConnCap(v int, nofile uint64, fcgiConns int) (int, error) {
	budget := int64(nofile) - int64(fdHeadroom(nofile)) - int64(fcgiConns)
	switch {
	case v == 0:
		return 0, nil
	case v > 0 && int64(v) > budget:
		return 0, fmt.Errorf("--max_connections %d: the file descriptor limit (RLIMIT_NOFILE %d) leaves room for %d HTTP connections (%d kept free, %d for FastCGI); raise the limit (LimitNOFILE=, ulimit -n) or lower the flag",
			v, nofile, max(budget, 0), fdHeadroom(nofile), fcgiConns)
	case v > 0:
		return v, nil
	case budget < 16:
		return 0, fmt.Errorf("--max_connections: the file descriptor limit (RLIMIT_NOFILE %d) leaves room for %d HTTP connections (%d kept free, %d for FastCGI --fcgi_max_connections); raise the limit (LimitNOFILE=, ulimit -n)",
			nofile, max(budget, 0), fdHeadroom(nofile), fcgiConns)
	}
	return int(budget), nil
}

// nofileLimit returns the process's file descriptor limit (Go raises the soft limit to the
// hard one at start).
func nofileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	return rl.Cur, nil
}
