//go:build pprof

package main

import "github.com/webswarm/webswarm/internal/pprofserve"

// Profiling builds (`go build -tags pprof ./tracker`) serve net/http/pprof on
// $WEBSWARM_PPROF (default 127.0.0.1:6060), for the benchmark scripts' PROFILE mode.
func init() { pprofserve.Start("127.0.0.1:6060") }
