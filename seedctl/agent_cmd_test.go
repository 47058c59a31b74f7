package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/agent"
)

func runAgentCmd(ctx context.Context, args ...string) (string, error) {
	cmd := newAgentCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestAgentCmdBadFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--state", dir}, "--dir is required"},
		{[]string{"--dir", file, "--state", dir}, "not a directory"},
		{[]string{"--dir", dir, "--state", dir, "--max-active", "-1"}, "must not be negative"},
		{[]string{"--dir", dir, "--state", dir, "--encryption", "maybe"}, "--encryption"},
		{[]string{"--dir", dir, "--state", dir, "--rescan-interval", "1ms"}, "--rescan-interval"},
		{[]string{"--dir", dir, "--state", dir, "--scrape-interval", "0s"}, "--scrape-interval"},
		{[]string{"--dir", dir, "--state", dir, "--announce-rate", "0"}, "--announce-rate"},
		{[]string{"--dir", dir, "--state", dir, "--announce-rate", "NaN"}, "--announce-rate"},
		{[]string{"--dir", dir, "--state", dir, "extra"}, "unknown command"},
		{[]string{"--dir", dir, "--state", dir, "--webrtc", "maybe"}, "want on, off or auto"},
		{[]string{"--dir", dir, "--state", dir, "--webrtc-max-peers", "0"}, "--webrtc-max-peers 0: want at least 1"},
		{[]string{"--dir", dir, "--state", dir, "--webrtc-ports", "9-1"}, "--webrtc-ports: rtc: bad UDP port range"},
		{[]string{"--dir", dir, "--state", dir, "--max-handshakes", "0"}, "--max-handshakes"},
		{[]string{"--dir", dir, "--state", dir, "--max-handshakes-per-ip", "-1"}, "--max-handshakes-per-ip"},
		{[]string{"--dir", dir, "--state", dir, "--max-connections-per-ip", "0"}, "--max-connections-per-ip"},
		{[]string{"--dir", dir, "--state", dir, "--handshake-first-byte-timeout", "1ms"}, "--handshake-first-byte-timeout"},
		{[]string{"--dir", dir, "--state", dir, "--handshake-timeout", "1s"}, "--handshake-timeout"},
		{[]string{"--dir", dir, "--state", dir, "--upload-stall-timeout", "0s"}, "--upload-stall-timeout"},
	} {
		_, err := runAgentCmd(context.Background(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// The command runs until its context ends (SIGTERM in main) and a second one on the same
// --state refuses to start with a message naming the lock.
func TestAgentCmdRunsAndLocks(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	port := strconv.Itoa(testenv.FreePort(t, "127.0.0.1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runAgentCmd(ctx, "--dir", dir, "--state", state, "--bind", "127.0.0.1", "--port", port, "--log-level", "error")
		done <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "the lock file", func() error {
		b, err := os.ReadFile(agent.LockPath(state))
		if err == nil && len(b) == 0 {
			err = errors.New("empty")
		}
		return err
	})
	_, err := runAgentCmd(context.Background(), "--dir", dir, "--state", state, "--bind", "127.0.0.1", "--port", "0")
	if !errors.Is(err, agent.ErrLocked) {
		t.Errorf("second agent: %v, want ErrLocked", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("agent: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop")
	}
}
