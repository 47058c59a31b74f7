//go:build !unix

package wsapi

import (
	"testing"
	"time"
)

// cpuTime is not measured here: the cpu-ns/op of BenchmarkAnnounceRelay reads 0.
func cpuTime(*testing.B) time.Duration { return 0 }
