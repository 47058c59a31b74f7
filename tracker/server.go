package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/version"
	"github.com/webswarm/webswarm/tracker/allowlist"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/dfile"
	"github.com/webswarm/webswarm/tracker/httpapi"
	"github.com/webswarm/webswarm/tracker/stats"
	"github.com/webswarm/webswarm/tracker/swarm"
	"github.com/webswarm/webswarm/tracker/udpapi"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

// server is the wired tracker: store, core, frontends and the background savers.
type server struct {
	o       *options
	log     *slog.Logger
	reg     *prometheus.Registry
	store   swarm.Store
	tracker *announce.Tracker
	saver   *dfile.Saver
	allowed *allowlist.List // nil without --allowed_dir
	access  *httpapi.AccessLog
	handler *httpapi.Handler
	udp     *udpapi.Server
	ws      *wsapi.Server         // nil with --websocket 0
	rdb     redis.UniversalClient // nil with the memory store
	limit   *announce.RateLimiter // nil without --max_announce_rate; shared by HTTP and UDP
	latency *prometheus.HistogramVec
	// maxConns is the HTTP connection cap (--max_connections, resolved; 0: none).
	maxConns int
	closers  []func() error
}

func newServer(o *options, logger *slog.Logger) (_ *server, err error) {
	s := &server{o: o, log: logger, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.close() // undo what was set up before the failure
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nofile, err := nofileLimit()
	if err != nil {
		return nil, err
	}
	fcgiConns := 0
	if o.fcgi != "" {
		fcgiConns = o.fcgiMaxConns
	}
	if s.maxConns, err = httpConnCap(o.maxConns, nofile, fcgiConns); err != nil {
		return nil, err
	}

	scfg := swarm.Config{
		PeerTimeout:   time.Duration(o.timeoutDownloaders) * time.Second,
		MaxTorrents:   o.maxTorrents,
		MaxPeers:      o.maxPeers,
		MaxTotalPeers: o.maxTotalPeers,
		MaxPeersPerIP: o.maxPeersPerIP,
		KeepDead:      o.keepDead == 1,
	}
	if o.store != "memory" {
		if err := s.openRedisStore(scfg); err != nil {
			return nil, err
		}
	} else if err := s.openMemoryStore(scfg); err != nil {
		return nil, err
	}

	if o.allowedDir != "" {
		s.allowed, err = allowlist.New(allowlist.Config{
			Dir:        o.allowedDir,
			Interval:   time.Duration(o.parseAllowedMinutes) * time.Minute,
			Logger:     logger,
			Registerer: s.reg,
		})
		if err != nil {
			return nil, fmt.Errorf("--allowed_dir: %w", err)
		}
		s.closers = append(s.closers, s.allowed.Close)
		logger.Info("allowed torrents loaded", "dir", o.allowedDir, "torrents", s.allowed.Len())
	}

	metrics := announce.NewMetrics(s.reg)
	cfg := announce.Config{
		Interval:       time.Duration(o.reannounceInterval) * time.Second,
		MinInterval:    time.Duration(o.minInterval) * time.Second,
		DefaultNumWant: o.responseSize,
		MaxNumWant:     o.maxGive,
		NATCheck:       o.natCheck,
		NATHandshake:   o.natCheckMode == "handshake",
		NATTimeout:     time.Duration(o.natCheckTimeout) * time.Second,
		NATQueue:       o.natCheckQueue,
		NATPerIP:       o.natCheckPerIP,
		PeerIDs:        o.peerIDs == 1,
		Logger:         logger,
	}
	if s.allowed != nil {
		cfg.Allowed = s.allowed
	}
	if o.responseSize == 0 {
		cfg.DefaultNumWant = -1 // an explicit 0 means none, not the default
	}
	if o.maxGive == 0 {
		cfg.MaxNumWant = -1
	}
	if o.websocket == 1 {
		if s.ws, err = s.newWebSocket(); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.ws.Close)
	}
	// HTTP and UDP announces and scrapes count the browsers too (the one swarm view); the
	// state file is written from s.store alone, so WebSocket peers are never saved.
	var store swarm.Store = s.store
	if s.ws != nil {
		store = swarm.WithOverlay(s.store, s.ws)
	}
	s.tracker, err = announce.New(cfg, store, metrics)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { s.tracker.Close(); return nil })

	if o.logfile != "" {
		s.access, err = httpapi.OpenAccessLog(o.logfile)
		if err != nil {
			return nil, err
		}
	}
	pcfg := stats.Config{Store: s.store, ShowNames: o.showNames == 1, Version: version.Version}
	if s.ws != nil {
		pcfg.WebTorrent = s.ws
	}
	if s.allowed != nil {
		pcfg.Names = s.allowed
		pcfg.FileLinks = o.allowGet == 1
	}
	page := stats.New(pcfg)
	s.reg.MustRegister(page.Collector())

	s.latency = httpapi.NewLatency(s.reg)
	hcfg := httpapi.Config{
		Tracker:             s.tracker,
		TrustedProxies:      o.trusted,
		OnlyLocalOverrideIP: o.onlyLocalOverrideIP,
		Prefix:              o.prefix,
		Scrape:              o.scrape,
		MaxFullScrape:       cmp.Or(o.maxFullScrape, -1), // 0: no limit
		MetricsPath:         o.metricsPath,
		Stats:               page.HTML(),
		StatsJSON:           page.JSON(),
		Metrics:             promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}),
		AccessLog:           s.access,
		Latency:             s.latency,
		Registerer:          s.reg,
		WriteTimeout:        time.Duration(o.socketTimeout) * time.Second,
		Logger:              logger,
	}
	if s.ws != nil {
		hcfg.WebSocket = s.ws
	}
	if h, ok := s.store.(interface{ Health() error }); ok {
		hcfg.Health = h.Health
	}
	if s.allowed != nil {
		hcfg.Name = func(ih bittorrent.InfoHash) (string, bool) {
			name, _, ok := s.allowed.Info(ih)
			return name, ok
		}
		if o.allowGet == 1 {
			hcfg.TorrentFile = s.allowed.File
		}
	}
	if o.maxAnnounceRate > 0 {
		s.limit, err = announce.NewRateLimiterConfig(announce.RateLimitConfig{
			PerSecond: o.maxAnnounceRate, MaxSources: o.rateTableSize,
			IPv4Prefix: o.rateIPv4Prefix, IPv6Prefix: o.rateIPv6Prefix, Registerer: s.reg,
		})
		if err != nil {
			return nil, fmt.Errorf("--max_announce_rate: %w", err)
		}
		hcfg.RateLimit = s.limit
	}
	if o.favicon != "" {
		hcfg.Favicon, err = os.ReadFile(o.favicon)
		if err != nil {
			return nil, fmt.Errorf("--favicon: %w", err)
		}
	}
	s.handler, err = httpapi.New(hcfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newWebSocket sets up the WebTorrent frontend from the --ws_* flags. Its connections are
// HTTP connections too (counted against --max_connections): by default they may take half
// of that cap, so browsers cannot lock HTTP announces out.
func (s *server) newWebSocket() (*wsapi.Server, error) {
	o := s.o
	maxConns := o.wsMaxConns
	if maxConns == -1 {
		maxConns = s.maxConns / 2
		if s.maxConns == 0 {
			maxConns = 0
		}
	}
	cfg := wsapi.Config{
		Interval:     time.Duration(o.wsInterval) * time.Second,
		MaxOffers:    o.wsMaxOffers,
		MaxMessage:   int64(o.wsMaxMessage),
		OfferTTL:     time.Duration(o.wsOfferTTL) * time.Second,
		IdleTimeout:  time.Duration(o.wsIdleTimeout) * time.Second,
		PingInterval: time.Duration(o.wsPingInterval) * time.Second,
		// A peer that takes none of a message for --socket_timeout is closed, as a slow
		// HTTP reader is.
		WriteTimeout:     time.Duration(o.socketTimeout) * time.Second,
		MaxConns:         cmp.Or(maxConns, -1), // 0: no limit
		MaxConnsPerIP:    cmp.Or(o.wsMaxConnsPerIP, -1),
		MaxBadMessages:   o.wsMaxBadMessages,
		MaxPendingOffers: o.wsMaxPendingOffers,
		MaxSwarms:        o.wsMaxSwarms,
		MaxPeers:         cmp.Or(o.maxPeers, -1),
		Registerer:       s.reg,
		Logger:           s.log,
	}
	// Browsers' completions are counted in the store (both stores can; a store that cannot
	// leaves them to the WebSocket tracker's own counts).
	if st, ok := s.store.(wsapi.Store); ok {
		cfg.Store = st
	}
	if s.allowed != nil {
		cfg.Allowed = s.allowed.Allowed
	}
	if s.rdb != nil {
		if err := s.newRelay(&cfg); err != nil {
			return nil, err
		}
	}
	ws, err := wsapi.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("WebSocket tracker: %w", err)
	}
	return ws, nil
}

// close releases everything newServer set up, in reverse order.
func (s *server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Error("shutdown", "err", err)
		}
	}
	s.closers = nil
}

func (s *server) serve(ctx context.Context, hup <-chan os.Signal) error {
	defer s.close()
	o := s.o
	// Open every listener before serving anything, so that /healthz answering means every
	// frontend (HTTP, FastCGI, UDP) is ready, and a busy port fails start-up cleanly.
	// No TCP keep-alive probes on accepted connections: announces are short-lived and
	// IdleTimeout closes idle ones; setting the probes up costs four setsockopt calls per
	// connection (6 % of a Connection: close request, measured with perf).
	lc := net.ListenConfig{KeepAlive: -1}
	hl, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(o.bind, strconv.Itoa(o.port)))
	if err != nil {
		return fmt.Errorf("listen HTTP: %w", inUse(err, "--port (or --bind)"))
	}
	var fl net.Listener
	if o.fcgi != "" {
		if fl, err = s.listenFCGI(); err != nil {
			hl.Close()
			return err
		}
		if fl, err = s.limitFCGI(fl); err != nil {
			hl.Close()
			return err
		}
	}
	udpConn, err := s.listenUDP()
	if err != nil {
		hl.Close()
		if fl != nil {
			fl.Close()
		}
		return err
	}

	timeout := time.Duration(o.socketTimeout) * time.Second
	// ReadHeaderTimeout and IdleTimeout bound slow and idle clients. There is no server-wide
	// ReadTimeout/WriteTimeout: requests have no body and announce/scrape replies fit the
	// socket buffer, and each deadline costs every request a timer update (5 % of CPU per
	// request); the handler sets a write deadline on its large replies instead.
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: timeout,
		IdleTimeout:       timeout,
		MaxHeaderBytes:    72 << 10, // a 200-hash scrape is ~14 KiB of query; 64 KiB is the query cap
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// GET /announce and /scrape are answered straight off the socket; every other request
	// goes, with the rest of its connection, to hs (httpapi.Server).
	fs := httpapi.NewServer(s.handler, hs)
	if err := fs.LimitConns(s.maxConns, s.reg); err != nil {
		hl.Close()
		if fl != nil {
			fl.Close()
		}
		if udpConn != nil {
			udpConn.Close()
		}
		return err
	}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	if fl != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fcgi.Serve(fl, s.handler.FastCGI()); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("FastCGI: %w", err)
			}
		}()
		s.log.Info("FastCGI listening", "addr", o.fcgi)
	}
	if udpConn != nil {
		s.serveUDP(&wg, errc, udpConn)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fs.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("HTTP: %w", err)
		}
	}()
	s.log.Info("tracker listening", "http", hl.Addr().String(), "max_connections", s.maxConns, "version", version.Version)
	if s.saver != nil {
		s.saver.Start()
	}
	memCtx, stopMem := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		releaseMemory(memCtx)
	}()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-hup:
			s.reload()
		}
	}
	s.log.Info("shutting down")
	if s.ws != nil {
		s.ws.Close() // hijacked connections: http.Server.Shutdown does not see them
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fs.Shutdown(sctx); err != nil {
		s.log.Warn("HTTP connections still open after 5 s; closing them", "err", err)
		fs.Close()
	}
	if fl != nil {
		fl.Close()
		if strings.HasPrefix(o.fcgi, "unix:") {
			os.Remove(strings.TrimPrefix(o.fcgi, "unix:"))
		}
	}
	s.stopUDP()
	stopMem()
	wg.Wait()
	if s.saver == nil {
		// A shared store is saved by Redis itself (its persistence is the admin's choice).
	} else if err := s.saver.Close(); err != nil {
		s.log.Error("final state save failed", "dfile", o.dfile, "err", err)
		if runErr == nil {
			runErr = fmt.Errorf("final state save: %w", err)
		}
	}
	if s.access != nil {
		s.access.Close()
	}
	return runErr
}

// reload reopens the access log and rescans the allowed directory (SIGHUP).
func (s *server) reload() {
	s.log.Info("SIGHUP: reopening logs and rescanning the allowed directory")
	if s.access != nil {
		if err := s.access.Reopen(); err != nil {
			s.log.Error("reopen access log", "err", err)
		}
	}
	if s.allowed != nil {
		if err := s.allowed.Rescan(); err != nil {
			s.log.Error("rescan --allowed_dir", "err", err)
		} else {
			s.log.Info("allowed torrents rescanned", "torrents", s.allowed.Len())
		}
	}
}

// limitFCGI puts --fcgi_max_params, --fcgi_max_connections and --socket_timeout in front of
// net/http/fcgi, which has no limits of its own.
func (s *server) limitFCGI(l net.Listener) (net.Listener, error) {
	ll, err := httpapi.LimitFastCGI(l, httpapi.FastCGILimits{
		MaxParams:  s.o.fcgiMaxParams,
		Timeout:    time.Duration(s.o.socketTimeout) * time.Second,
		MaxConns:   s.o.fcgiMaxConns,
		Registerer: s.reg,
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return ll, nil
}

// inUse says which flag moves a listener whose address another program holds: a newcomer's
// first "address already in use" (a second tracker, bttrack, another service on 6969) then
// names its own fix.
func inUse(err error, flags string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (another program listens there; choose another address with %s)", err, flags)
	}
	return err
}

// listenFCGI opens the FastCGI listener; a unix socket gets --fcgi_socket_mode and
// --fcgi_socket_group so the web server's user can connect (net.Listen creates it 0755).
func (s *server) listenFCGI() (net.Listener, error) {
	o := s.o
	path, isUnix := strings.CutPrefix(o.fcgi, "unix:")
	if !isUnix {
		l, err := net.Listen("tcp", o.fcgi)
		if err != nil {
			return nil, fmt.Errorf("listen FastCGI: %w", inUse(err, "--fcgi"))
		}
		return l, nil
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--fcgi %s: exists and is not a socket", path)
		}
		// A stale socket from a previous run; refuse if something still answers on it.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("--fcgi %s: another process is serving this socket", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("listen FastCGI: %w (create %s first, e.g. with systemd's RuntimeDirectory=)", err, filepath.Dir(path))
		}
		return nil, fmt.Errorf("listen FastCGI: %w", err)
	}
	if o.fcgiSocketGroup != "" {
		g, err := user.LookupGroup(o.fcgiSocketGroup)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("--fcgi_socket_group: %w", err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("--fcgi_socket_group: %w", err)
		}
	}
	if err := os.Chmod(path, os.FileMode(o.sockMode)); err != nil {
		l.Close()
		return nil, fmt.Errorf("--fcgi_socket_mode: %w", err)
	}
	return l, nil
}
