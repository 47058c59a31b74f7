//go:build pprof

package main

import "github.com/webswarm/webswarm/internal/pprofserve"

// Profiling builds (`go build -tags pprof ./seedctl`) serve net/http/pprof on
// $WEBSWARM_PPROF (default 127.0.0.1:6061, beside the tracker's 6060), so a running
// `seedctl get` or `seed` can be profiled with
// `go tool pprof http://127.0.0.1:6061/debug/pprof/profile?seconds=10`.
func init() { pprofserve.Start("127.0.0.1:6061") }
