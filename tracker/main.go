// Command tracker is webswarm's BitTorrent tracker: the successor of mainline bttrack 3.4.2,
// built to run behind Apache httpd or nginx (HTTP proxy or FastCGI), with UDP (BEP 15), a
// stats page and Prometheus metrics. Run `tracker --help` for the flags (spelled --name or
// -name), `tracker --version` for the version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/webswarm/webswarm/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], hup, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		fmt.Println("tracker (webswarm) " + version.Version)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tracker: %v\n", err)
		os.Exit(1)
	}
}

// run starts the tracker and serves until ctx ends; hup delivers reload requests.
func run(ctx context.Context, args []string, hup <-chan os.Signal, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel))
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range o.warnings() {
		logger.Warn(w)
	}
	srv, err := newServer(o, logger)
	if err != nil {
		return err
	}
	return srv.serve(ctx, hup)
}
