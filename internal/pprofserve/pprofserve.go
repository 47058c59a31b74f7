//go:build pprof

// Package pprofserve serves net/http/pprof for profiling builds (`go build -tags pprof`) of
// both programs; ordinary builds do not contain it.
package pprofserve

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // the profiling endpoints, on http.DefaultServeMux
	"os"
)

// Start serves the profiling endpoints on $WEBSWARM_PPROF, or on def when it is unset, for the
// life of the process.
func Start(def string) {
	addr := os.Getenv("WEBSWARM_PPROF")
	if addr == "" {
		addr = def
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof", "addr", addr, "err", err)
		}
	}()
}
