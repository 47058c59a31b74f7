//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiling endpoints for `go build -tags pprof` builds only
	"os"
)

// Profiling builds (`go build -tags pprof ./seedctl`) serve net/http/pprof on
// $WEBSWARM_PPROF (default 127.0.0.1:6061, beside the tracker's 6060), so a running
// `seedctl get` or `seed` can be profiled with
// `go tool pprof http://127.0.0.1:6061/debug/pprof/profile?seconds=10`.
// Ordinary builds do not contain this file.
func init() {
	addr := os.Getenv("WEBSWARM_PPROF")
	if addr == "" {
		addr = "127.0.0.1:6061"
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof", "err", err)
		}
	}()
}
