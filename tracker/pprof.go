//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiling endpoints for `go build -tags pprof` builds only
	"os"
)

// Profiling builds (`go build -tags pprof ./tracker`) serve net/http/pprof on
// $WEBSWARM_PPROF (default 127.0.0.1:6060), for the benchmark scripts' PROFILE mode.
func init() {
	addr := os.Getenv("WEBSWARM_PPROF")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof", "err", err)
		}
	}()
}
