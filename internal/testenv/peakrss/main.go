// Command peakrss runs a program and writes the program's own peak resident memory, in
// bytes, to the file named by its first argument:
//
//	peakrss OUT PROGRAM [ARG]...
//
// Tests use it instead of reading ru_maxrss of a child they start themselves: Go starts a
// child with vfork semantics, and the kernel then counts the parent's peak resident memory
// into the child's ru_maxrss, so a test process that once grew past a bound makes every
// later measurement exceed it. peakrss is a new, small process: what it adds to its child's
// figure is its own few MiB. Standard input, output and error pass through; peakrss exits
// with the program's exit code (or 128+signal).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: peakrss OUT PROGRAM [ARG]...")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// A test that kills us on its deadline kills the program too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Signals a test sends to stop the program reach it, not just us.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "peakrss:", err)
		os.Exit(127)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	default:
		fmt.Fprintln(os.Stderr, "peakrss:", err)
		os.Exit(127)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		if werr := os.WriteFile(os.Args[1], []byte(strconv.FormatInt(ru.Maxrss<<10, 10)), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "peakrss:", werr)
			os.Exit(127)
		}
	}
	os.Exit(code)
}
