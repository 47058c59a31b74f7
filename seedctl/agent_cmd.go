package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/internal/version"
	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// agentRunFlags are seedctl agent's flags.
type agentRunFlags struct {
	dir, data, state, metrics string
	bind, ip, encryption      string
	port                      int
	maxActive, maxConns       int
	maxUploads                int
	maxUploadRate             int // KiB/s
	torrentUploadRate         int // KiB/s
	checkWorkers              int
	metricsMaxTorrents        int
	numWant                   int
	rerequest, rescan, scrape time.Duration
	announceRate              float64
	noWatch                   bool
	payloadCheck              time.Duration
	logLevel                  string
	control, tokenFile        string
	conns                     connFlags
	limits                    limitFlags
	webrtc                    webrtcFlags
}

func newAgentCmd() *cobra.Command {
	var f agentRunFlags
	cmd := &cobra.Command{
		Use:   "agent --dir DIR --state DIR [--data DIR] [--metrics 127.0.0.1:PORT]",
		Short: "Seed every .torrent under a directory, as a service",
		Long: "agent seeds every .torrent under DIR (the successor of mainline btlaunchmany). The payload is found\n" +
			"beside each .torrent (the publish layout: big.iso beside big.iso.torrent) or under --data. New, changed\n" +
			"and removed .torrent files are picked up at once (inotify) and by a periodic rescan; SIGHUP rescans.\n" +
			"A torrent whose payload is missing or fails verification is in state error and retried; a missing\n" +
			"data directory (an unmounted disk) pauses its torrents until it is back. All torrents share one\n" +
			"listen port. SIGTERM announces \"stopped\" for every torrent and saves state within 10 s. Resume\n" +
			"records in --state let a restart trust unchanged payloads without hashing them.\n\n" +
			"A .torrent is read as untrusted input: only regular files (a FIFO or a link to a device is refused at\n" +
			"once), within the --max-torrent-* limits. A refused file is logged once and read again only when its\n" +
			"size or modification time changes (touch it to force a new look), not at every rescan.\n\n" +
			"A torrent listing a ws:// or wss:// tracker is also seeded to browsers over WebRTC (--webrtc auto or on;\n" +
			"off: never); its session then runs while it seeds. --webrtc-max-peers caps the whole agent,\n" +
			"--webrtc-torrent-peers each torrent, --webrtc-max-offers the agent's offers waiting for an answer.\n" +
			"The torrents share one WebSocket per tracker URL (100 torrents a socket).",
		Example: "  seedctl agent --dir /var/www/html/iso --state /var/lib/webswarm --metrics 127.0.0.1:9301",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "directory watched for .torrent files (required)")
	fl.StringVar(&f.data, "data", "", "directory holding every payload (default: beside each .torrent)")
	fl.StringVar(&f.state, "state", defaultStateDir(), "directory for the lock file, resume records and the agent's state")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9301)")
	fl.IntVar(&f.port, "port", 6881, "peer listen port, for every torrent")
	fl.StringVar(&f.bind, "bind", "", "address to listen on and connect from (default: all)")
	fl.StringVar(&f.ip, "ip", "", "address to give the trackers (default: the one they see)")
	fl.StringVar(&f.encryption, "encryption", "prefer", "peer encryption (MSE): prefer, require or off")
	fl.IntVar(&f.maxActive, "max-active", 0, "torrents seeding at once; others wait queued (0 = no limit)")
	fl.IntVar(&f.maxConns, "max-connections", agent.DefaultMaxConns, "global peer connection limit")
	fl.IntVar(&f.maxUploads, "max-uploads", 7, "peers uploaded to at once, per torrent")
	fl.IntVar(&f.maxUploadRate, "max-upload-rate", 0, "global upload cap in KiB/s (0 = unlimited)")
	fl.IntVar(&f.torrentUploadRate, "max-upload-rate-torrent", 0, "per-torrent upload cap in KiB/s (0 = unlimited)")
	fl.IntVar(&f.checkWorkers, "check-workers", 0, "torrents verified at once (0 = one per CPU, at least 2)")
	fl.IntVar(&f.metricsMaxTorrents, "metrics-max-torrents", agent.DefaultMetricsMaxTorrents, "torrents with their own metric series; beyond, totals only")
	fl.IntVar(&f.numWant, "numwant", 50, "peers to ask the trackers for")
	fl.DurationVar(&f.rerequest, "rerequest-interval", 300*time.Second, "tracker re-announce interval when it sets none")
	fl.DurationVar(&f.rescan, "rescan-interval", agent.DefaultRescanInterval, "how often DIR is walked again (inotify misses NFS changes)")
	fl.DurationVar(&f.scrape, "scrape-interval", agent.DefaultScrapeInterval, "how often paused, queued and failed torrents are scraped for the tracker's counts")
	fl.Float64Var(&f.announceRate, "announce-rate", agent.DefaultAnnounceRate, "announces per second across all torrents (start-up is spread out at this rate)")
	fl.BoolVar(&f.noWatch, "no-watch", false, "no inotify: find changes by the periodic rescan and SIGHUP only")
	fl.DurationVar(&f.payloadCheck, "payload-check-interval", session.DefaultPayloadCheckInterval,
		"how often a seeding session stats its payload files to find them changed (beside inotify; 0 = inotify only)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.control, "control", "", "serve the control API on 127.0.0.1:PORT (with --token-file) instead of the unix socket STATE/agent.sock")
	fl.StringVar(&f.tokenFile, "token-file", "", "bearer token file for --control")
	f.conns.register(cmd)
	f.limits.register(fl)
	f.webrtc.register(fl)
	return cmd
}

// validate checks the flags and names the bad one.
func (f *agentRunFlags) validate() error {
	switch {
	case f.dir == "":
		return errors.New("--dir is required: the directory of .torrent files to seed")
	case f.state == "":
		return errors.New("--state is required")
	case f.port < 0 || f.port > 65535:
		return fmt.Errorf("--port %d: want 0-65535", f.port)
	case f.maxActive < 0 || f.maxConns < 1 || f.maxUploads < 1 || f.checkWorkers < 0:
		return errors.New("--max-active and --check-workers must not be negative; --max-connections and --max-uploads at least 1")
	case f.maxUploadRate < 0 || f.torrentUploadRate < 0:
		return errors.New("upload caps must not be negative")
	case f.metricsMaxTorrents < 0:
		return fmt.Errorf("--metrics-max-torrents %d: want 0 or more", f.metricsMaxTorrents)
	case f.rerequest < time.Second || f.rescan < time.Second || f.scrape < time.Second:
		return errors.New("--rerequest-interval, --rescan-interval and --scrape-interval: want at least 1s")
	case !(f.announceRate > 0) || f.announceRate > 1e6:
		return fmt.Errorf("--announce-rate %g: want more than 0 (announces per second)", f.announceRate)
	case f.payloadCheck < 0:
		return fmt.Errorf("--payload-check-interval %s: want 0 (inotify only) or more", f.payloadCheck)
	}
	if err := f.conns.validate(); err != nil {
		return err
	}
	if _, err := f.limits.limits(); err != nil {
		return err
	}
	if err := f.webrtc.validate(); err != nil {
		return err
	}
	if st, err := os.Stat(f.dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--dir %s: not a directory", f.dir)
	}
	if _, err := wire.ParseEncryption(f.encryption); err != nil {
		return fmt.Errorf("--encryption %q: %w", f.encryption, err)
	}
	if (f.control == "") != (f.tokenFile == "") {
		return errors.New("--control and --token-file go together: the TCP control API needs a bearer token")
	}
	return nil
}

func runAgent(cmd *cobra.Command, f *agentRunFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", f.logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	enc, _ := wire.ParseEncryption(f.encryption)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	maxSeries := f.metricsMaxTorrents
	if maxSeries == 0 {
		maxSeries = -1 // 0 on the command line means none; the Config's zero is the default
	}
	dialer, httpClient := boundClients(f.bind)
	limits, _ := f.limits.limits() // validated above
	// One transport for the whole agent: its peers end with the sessions, which Run stops
	// before it returns; Close then releases what is left (sockets, goroutines).
	webrtc, err := f.webrtc.agentTransport(reg)
	if err != nil {
		return err
	}
	if webrtc != nil {
		defer webrtc.Close()
	}
	a, err := agent.New(agent.Config{
		Dir:                f.dir,
		Data:               f.data,
		StateDir:           f.state,
		Listen:             net.JoinHostPort(f.bind, strconv.Itoa(f.port)),
		PeerID:             newPeerID(),
		Dialer:             dialer,
		Encryption:         enc,
		MaxActive:          f.maxActive,
		MaxConns:           f.maxConns,
		MaxUploads:         f.maxUploads,
		Serve:              f.conns.serve(0, nil),
		MaxConnsPerIP:      f.conns.maxConnsPerIP,
		UploadStallTimeout: f.conns.uploadStallTimeout,
		UploadRate:         f.maxUploadRate * 1024,
		TorrentUploadRate:  f.torrentUploadRate * 1024,
		CheckWorkers:       f.checkWorkers,
		NoWatch:            f.noWatch,
		PayloadPoll:        payloadCheckInterval(f.payloadCheck),
		RescanInterval:     f.rescan,
		TorrentLimits:      limits,
		ScrapeInterval:     f.scrape,
		AnnounceRate:       f.announceRate,
		Announce:           announcer.Config{IP: f.ip, NumWant: f.numWant, Interval: f.rerequest, HTTP: httpClient},
		WebRTC:             webrtc,
		WebRTCTorrentPeers: f.webrtc.torrentCap,
		Registry:           reg,
		MetricsMaxTorrents: maxSeries,
		Version:            version.Version,
		Logger:             logger,
	})
	if err != nil {
		return inUse(err, "--port (or --bind)")
	}
	if f.metrics != "" {
		stop, err := serveMetrics(f.metrics, reg)
		if err != nil {
			a.Close()
			return err
		}
		defer stop()
	}
	// The control API starts after agent.New took the state lock: a second agent never gets
	// as far as touching the first one's socket.
	ctl, err := api.Start(a, api.Config{StateDir: f.state, TCP: f.control, TokenFile: f.tokenFile, Logger: logger})
	if err != nil {
		a.Close()
		return fmt.Errorf("control API: %w", inUse(err, "--control"))
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = ctl.Shutdown(sctx)
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx := cmd.Context()
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				logger.Info("SIGHUP: rescanning")
				a.Rescan()
			}
		}
	})
	logger.Info("agent started", "dir", f.dir, "state", f.state, "peer_addr", a.Addr().String(), "control", ctl.Addr().String())
	return a.Run(ctx)
}
