//go:build unix

package wsapi

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's CPU time so far (user and system): on a shared machine the CPU
// an announce costs, which other load changes less than the wall-clock time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
