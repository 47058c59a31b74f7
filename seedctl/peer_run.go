package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// peerIDPrefix is the Azureus-style client id of BEP 20: WS, version 0100.
const peerIDPrefix = "-WS0100-"

// newPeerID is our Azureus-style peer id: the client prefix and 12 random bytes.
func newPeerID() bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], peerIDPrefix)
	_, _ = rand.Read(id[len(peerIDPrefix):])
	return id
}

// listenFirstFree listens on the first free port in [min, max] of addr, as mainline.
func listenFirstFree(ctx context.Context, addr string, min, max int) (net.Listener, error) {
	var lc net.ListenConfig
	var last error
	for p := min; p <= max; p++ {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err == nil {
			return l, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no free port in %d-%d on %q: %w", min, max, addr, inUse(last, "--minport and --maxport (or --bind)"))
}

// rateLimiter is a token bucket for kib KiB/s, nil when unlimited. The burst holds a
// quarter second of traffic and at least one 128 KiB batch of blocks.
func rateLimiter(kib int) *rate.Limiter {
	if kib <= 0 {
		return nil
	}
	bps := kib * 1024
	return rate.NewLimiter(rate.Limit(bps), max(bps/4, 128<<10))
}

// runPeer is seed (download false) and get (download true): it resolves the torrent, listens
// on the first free port, builds the job and runs it under the live display until it ends.
func runPeer(cmd *cobra.Command, f *peerFlags, src, dir string, download bool, g getOptions) error {
	if err := f.validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	enc, _ := wire.ParseEncryption(f.encryption)
	mode, _ := resume.ParseMode(f.check)
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	dialer, httpClient := boundClients(f.bind)

	limits, _ := f.limits.limits() // validated above
	source, err := resolveSource(ctx, httpClient, src, limits)
	if err != nil {
		return err
	}
	dir, name := saveLocation(f, source, dir, download)
	if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
		return fmt.Errorf("--state %s: %w", f.stateDir, err)
	}

	l, err := listenFirstFree(ctx, f.bind, f.minPort, f.maxPort)
	if err != nil {
		return err
	}
	defer l.Close()

	reg, metrics := newPeerRegistry()
	if f.metrics != "" {
		stop, err := serveMetrics(f.metrics, reg)
		if err != nil {
			return err
		}
		defer stop()
	}

	scfg, acfg := peerConfigs(f, l, dialer, httpClient, logger, metrics)
	t, err := torrentOf(ctx, source, download, f, scfg, acfg, enc, l, logger)
	if err != nil {
		return err
	}
	if name == "" {
		name = t.Name
	}
	wcfg := wireConfig(scfg.PeerID, enc, t)
	scfg.Wire = wcfg
	scfg.WebSeeds = t.WebSeeds

	// inotify tells the seed at once that an admin changed its payload; without it (no
	// inotify instance left) the poll finds out.
	pw, err := job.NewWatcher(logger)
	if err != nil {
		logger.Warn("no file notifications for the payload; polling it", "every", f.payloadCheck, "err", err)
	} else {
		defer pw.Close()
	}
	webrtc, err := f.webrtc.transport(t, reg)
	if err != nil {
		return err
	}
	if webrtc != nil {
		defer webrtc.Close()
	}
	j, err := job.New(job.Config{
		WebRTC:      webrtc,
		WebRTCPeers: f.webrtc.torrentCap,
		Torrent:     t,
		Name:        name,
		DataDir:     dir,
		ResumePath:  resume.PathFor(f.stateDir, t.InfoHash),
		Download:    download,
		Check:       mode,
		Session:     scfg,
		Announce:    acfg,
		Logger:      logger,
		Watcher:     pw,
	})
	if err != nil {
		return err
	}
	return runTransfer(ctx, cmd.OutOrStdout(), transfer{
		f: f, get: g, download: download, logger: logger,
		l: l, wcfg: wcfg, metrics: metrics,
		t: t, j: j, name: name, dir: dir,
	})
}

// saveLocation is where the payload is: --saveas names it (file or top folder); otherwise it
// is the torrent's own name in dir, which defaults to "." for get and to the .torrent's
// directory for seed. An empty name means the torrent's, known once its metadata is.
func saveLocation(f *peerFlags, source *torrentSource, dir string, download bool) (string, string) {
	if download && dir == "" {
		dir = "."
	}
	name := ""
	if f.saveAs != "" {
		dir, name = filepath.Dir(f.saveAs), filepath.Base(f.saveAs)
	}
	if dir == "" {
		dir = source.dir
	}
	return dir, name
}

// newPeerRegistry is the registry --metrics serves: the Go and process collectors and the
// session's metrics.
func newPeerRegistry() (*prometheus.Registry, *session.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, session.NewMetrics(reg)
}

// peerConfigs are the session's and the announcer's configuration from the flags, for a
// fresh peer id listening on l. The wire configuration and web seeds wait for the torrent.
func peerConfigs(f *peerFlags, l net.Listener, dialer *net.Dialer, httpClient *http.Client, logger *slog.Logger, metrics *session.Metrics) (session.Config, announcer.Config) {
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	var self []netip.AddrPort
	if a, ok := netip.AddrFromSlice(l.Addr().(*net.TCPAddr).IP); ok {
		self = append(self, netip.AddrPortFrom(a.Unmap(), port))
	}
	scfg := session.Config{
		PeerID:      newPeerID(),
		ListenPort:  port,
		Dialer:      dialer,
		MaxUploads:  f.maxUploads,
		MaxConns:    f.maxConns,
		MaxInitiate: f.maxInitiate,
		UploadRate:  rateLimiter(f.maxUploadRate),
		HTTP:        httpClient,
		Logger:      logger,
		Metrics:     metrics,

		MaxConnsPerIP:      f.conns.maxConnsPerIP,
		UploadStallTimeout: f.conns.uploadStallTimeout,
	}
	scfg.DownloadRate = rateLimiter(f.maxDownloadRate)
	scfg.PayloadCheckInterval = payloadCheckInterval(f.payloadCheck)
	acfg := announcer.Config{
		Port:     port,
		IP:       f.ip,
		NumWant:  f.numWant,
		Interval: f.rerequest,
		MinPeers: f.minPeers,
		HTTP:     httpClient,
		Self:     self,
		Logger:   logger,
	}
	return scfg, acfg
}

// torrentOf is the source's torrent; a magnet link's metadata is fetched from its peers
// (get only) and kept in the state directory, so that the download resumes from a file next time.
func torrentOf(ctx context.Context, source *torrentSource, download bool, f *peerFlags, scfg session.Config, acfg announcer.Config, enc wire.Encryption, l net.Listener, logger *slog.Logger) (*metafile.Torrent, error) {
	if source.t != nil {
		return source.t, nil
	}
	if !download {
		return nil, errors.New("seed needs the .torrent: a magnet link has no payload description until it is fetched (use get)")
	}
	t, err := fetchMagnet(ctx, source.magnet, f, scfg, acfg, enc, l)
	if err != nil {
		return nil, err
	}
	if err := metafile.WriteFile(filepath.Join(f.stateDir, fmt.Sprintf("%x.torrent", t.InfoHash)), torrentFile(t, source.magnet.Trackers), true); err != nil {
		logger.Warn("cannot keep the fetched .torrent", "err", err)
	}
	return t, nil
}

// wireConfig is the peer wire configuration of a process serving the one torrent t.
func wireConfig(peerID bittorrent.PeerID, enc wire.Encryption, t *metafile.Torrent) *wire.Config {
	return &wire.Config{
		PeerID:     peerID,
		Reserved:   wire.DefaultReserved,
		Encryption: enc,
		Known:      func(ih bittorrent.InfoHash) bool { return ih == t.InfoHash },
		InfoHashes: func(yield func(bittorrent.InfoHash) bool) { yield(t.InfoHash) },
	}
}

// transfer is a job ready to run and what runTransfer needs around it.
type transfer struct {
	f        *peerFlags
	get      getOptions
	download bool
	logger   *slog.Logger

	l       net.Listener // accepts the torrent's incoming peers
	wcfg    *wire.Config
	metrics *session.Metrics

	t         *metafile.Torrent
	j         *job.Job
	name, dir string // the payload: dir/name
}

// runTransfer serves incoming peers and runs the job, refreshing the display every
// --display-interval, until the job ends: interrupted, or for get complete and past
// --exit-on-complete, --seed-time or --seed-ratio. It returns the job's error.
func runTransfer(ctx context.Context, out io.Writer, x transfer) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveDone := make(chan error, 1)
	go func() {
		serveDone <- session.Serve(runCtx, x.l, x.wcfg, func(ih bittorrent.InfoHash) *session.Torrent {
			if ih != x.t.InfoHash {
				return nil
			}
			return x.j.Session()
		}, x.f.conns.serve(x.f.maxConns, x.metrics))
	}()
	jobDone := make(chan error, 1)
	go func() { jobDone <- x.j.Run(runCtx) }()

	printer := newTransferPrinter(out, outputMode(out, x.f.asJSON))
	tick := time.NewTicker(x.f.display)
	defer tick.Stop()
	abs, _ := filepath.Abs(filepath.Join(x.dir, x.name))
	var completedAt time.Time
	done := x.j.Done()
	var runErr error
loop:
	for {
		select {
		case runErr = <-jobDone:
			break loop
		case <-done:
			done = nil
			completedAt = time.Now()
			if x.download && x.get.exitOnComplete {
				cancel()
			}
		case <-tick.C:
			st := x.j.Stats()
			if !x.f.quiet {
				v := viewOf(x.t, x.name, abs, st)
				if err := printer.Print(&v); err != nil {
					x.logger.Warn("status output", "err", err)
				}
			}
			if !completedAt.IsZero() && x.download && runCtx.Err() == nil && x.get.seededEnough(completedAt, st.Uploaded, x.t.Layout.Total) {
				cancel()
			}
		}
	}
	cancel()
	<-serveDone
	if !x.f.quiet {
		v := viewOf(x.t, x.name, abs, x.j.Stats())
		_ = printer.Print(&v)
	}
	return runErr
}

// payloadCheckInterval turns --payload-check-interval into session.Config's: 0 there is the
// default, negative is no polling.
func payloadCheckInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// serveMetrics serves reg on addr until stop is called.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, inUse(err, "--metrics"))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}

// boundClients are the peer dialer and the HTTP client (trackers, web seeds, .torrent URLs),
// both connecting from bind when it is set (--bind: listen on and connect from one address).
// Without bind, LocalAddr stays a nil interface: a nil *net.TCPAddr in it would make every
// dial error read "dial tcp <nil>->HOST:PORT".
func boundClients(bind string) (*net.Dialer, *http.Client) {
	var local net.Addr
	if bind != "" {
		local = &net.TCPAddr{IP: net.ParseIP(bind)}
	}
	dialer := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{LocalAddr: local, Timeout: 15 * time.Second}).DialContext
	return dialer, &http.Client{Transport: transport, Timeout: 60 * time.Second}
}
