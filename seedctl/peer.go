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
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/version"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// peerIDPrefix is the Azureus-style client id of BEP 20: WS, version 0100.
const peerIDPrefix = "-WS0100-"

// fetchTimeout bounds fetching a .torrent by URL.
const fetchTimeout = 30 * time.Second

// peerFlags are the flags seed and get share, after mainline btdownloadheadless.
type peerFlags struct {
	maxUploads      int
	maxUploadRate   int // KiB/s
	maxDownloadRate int // KiB/s
	minPort         int
	maxPort         int
	bind            string
	ip              string
	rerequest       time.Duration
	minPeers        int
	maxInitiate     int
	maxConns        int
	display         time.Duration
	encryption      string
	metrics         string
	asJSON          bool
	quiet           bool
	check           string
	stateDir        string
	url             string
	saveAs          string
	numWant         int
	conns           connFlags
	limits          limitFlags
	payloadCheck    time.Duration
}

func (f *peerFlags) register(cmd *cobra.Command, checkDefault string) {
	fl := cmd.Flags()
	fl.IntVar(&f.maxUploads, "max-uploads", 7, "peers uploaded to at once (plus one optimistic slot)")
	fl.IntVar(&f.maxUploadRate, "max-upload-rate", 0, "upload cap in KiB/s (0 = unlimited)")
	fl.IntVar(&f.maxDownloadRate, "max-download-rate", 0, "download cap in KiB/s (0 = unlimited)")
	fl.IntVar(&f.minPort, "minport", 6881, "lowest port to listen on (the first free one in [minport, maxport] is used)")
	fl.IntVar(&f.maxPort, "maxport", 6999, "highest port to listen on")
	fl.StringVar(&f.bind, "bind", "", "address to listen on and connect from (default: all)")
	fl.StringVar(&f.ip, "ip", "", "address to give the tracker (default: the one it sees)")
	fl.DurationVar(&f.rerequest, "rerequest-interval", 300*time.Second, "tracker re-announce interval when it sets none")
	fl.IntVar(&f.minPeers, "min-peers", 20, "announce early while fewer peers than this are connected")
	fl.IntVar(&f.maxInitiate, "max-initiate", 35, "stop connecting out at this many peers")
	fl.IntVar(&f.maxConns, "max-connections", 80, "connection limit")
	fl.DurationVar(&f.display, "display-interval", 500*time.Millisecond, "status refresh interval")
	fl.StringVar(&f.encryption, "encryption", "prefer", "peer encryption (MSE): prefer, require or off")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9300)")
	fl.BoolVar(&f.asJSON, "json", false, "print status as one JSON object a line")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no status output")
	fl.StringVar(&f.check, "check", checkDefault, "payload check at start: full, fast (trust a clean resume record whose file sizes and times match) or none")
	fl.StringVar(&f.stateDir, "state", defaultStateDir(), "directory for resume records")
	fl.StringVar(&f.url, "url", "", "URL of the .torrent (mainline's --url)")
	fl.StringVar(&f.saveAs, "saveas", "", "the payload's path: file or top folder (mainline's --saveas)")
	fl.IntVar(&f.numWant, "numwant", 50, "peers to ask the tracker for")
	f.conns.register(cmd)
	f.limits.register(fl)
	fl.DurationVar(&f.payloadCheck, "payload-check-interval", session.DefaultPayloadCheckInterval,
		"how often a seed stats its payload files to find them changed (beside file notifications; 0 = notifications only)")
}

// defaultStateDir is $XDG_STATE_HOME/webswarm, else ~/.local/state/webswarm.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "webswarm")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "webswarm")
	}
	return ".webswarm"
}

// validate checks the flags and names the bad one.
func (f *peerFlags) validate() error {
	switch {
	case f.maxUploads < 1:
		return fmt.Errorf("--max-uploads %d: want at least 1", f.maxUploads)
	case f.maxUploadRate < 0:
		return fmt.Errorf("--max-upload-rate %d: want 0 (unlimited) or more", f.maxUploadRate)
	case f.maxDownloadRate < 0:
		return fmt.Errorf("--max-download-rate %d: want 0 (unlimited) or more", f.maxDownloadRate)
	case f.minPort < 1 || f.minPort > 65535:
		return fmt.Errorf("--minport %d: want 1-65535", f.minPort)
	case f.maxPort < f.minPort || f.maxPort > 65535:
		return fmt.Errorf("--maxport %d: want %d-65535", f.maxPort, f.minPort)
	case f.rerequest < time.Second:
		return fmt.Errorf("--rerequest-interval %s: want at least 1s", f.rerequest)
	case f.minPeers < 0 || f.maxInitiate < 0 || f.maxConns < 1:
		return errors.New("--min-peers, --max-initiate and --max-connections must not be negative")
	case f.display <= 0:
		return fmt.Errorf("--display-interval %s: want more than 0", f.display)
	case f.numWant < 0:
		return fmt.Errorf("--numwant %d: want 0 or more", f.numWant)
	case f.payloadCheck < 0:
		return fmt.Errorf("--payload-check-interval %s: want 0 (notifications only) or more", f.payloadCheck)
	}
	if err := f.conns.validate(); err != nil {
		return err
	}
	if _, err := f.limits.limits(); err != nil {
		return err
	}
	if f.bind != "" {
		if _, err := netip.ParseAddr(f.bind); err != nil {
			return fmt.Errorf("--bind %q: not an IP address", f.bind)
		}
	}
	if f.ip != "" {
		if _, err := netip.ParseAddr(f.ip); err != nil {
			return fmt.Errorf("--ip %q: not an IP address", f.ip)
		}
	}
	if _, err := wire.ParseEncryption(f.encryption); err != nil {
		return fmt.Errorf("--encryption %q: %w", f.encryption, err)
	}
	if _, err := resume.ParseMode(f.check); err != nil {
		return fmt.Errorf("--check %q: %w", f.check, err)
	}
	return nil
}

func newSeedCmd() *cobra.Command {
	var f peerFlags
	var data string
	cmd := &cobra.Command{
		Use:   "seed TORRENT [--data DIR]",
		Short: "Seed a complete payload until interrupted",
		Long: "seed checks the payload against TORRENT and seeds it until interrupted (SIGINT/SIGTERM announce\n" +
			"\"stopped\" and save the resume record). DIR holds the torrent's file or top folder, like every client's\n" +
			"save path; by default the .torrent's own directory (the publish layout: big.iso beside big.iso.torrent).\n" +
			"Mainline's way works too: seedctl seed --url URL-of-.torrent --saveas PATH.",
		Example: "  seedctl seed /var/www/html/iso/big.iso.torrent\n" +
			"  seedctl seed --url https://example.org/big.iso.torrent --saveas ./big.iso",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := sourceArg(args, f.url)
			if err != nil {
				return err
			}
			return runPeer(cmd, &f, src, data, false, getOptions{})
		},
	}
	f.register(cmd, "fast")
	cmd.Flags().StringVar(&data, "data", "", "directory holding the torrent's file or top folder (default: the torrent's directory)")
	cmd.ValidArgsFunction = completeTorrent
	return cmd
}

func newGetCmd() *cobra.Command {
	var f peerFlags
	var out string
	var seedTime time.Duration
	var seedRatio float64
	var exitOnComplete bool
	cmd := &cobra.Command{
		Use:   "get TORRENT|URL|MAGNET [--out DIR]",
		Short: "Download a torrent, verify it, then seed",
		Long: "get downloads into DIR (resuming an earlier, interrupted download), verifies every piece, then seeds\n" +
			"until interrupted, for --seed-time, until --seed-ratio, or exits at once with --exit-on-complete.\n" +
			"The torrent may be a file, an http(s) URL of a .torrent, or a magnet link with tr= trackers (the\n" +
			"metadata is then fetched from peers, BEP 9). Web seeds (BEP 19) are used together with peers.",
		Example: "  seedctl get https://example.org/big.iso.torrent --out /srv/mirror\n" +
			"  seedctl get 'magnet:?xt=urn:btih:...&tr=https://example.org/announce' --exit-on-complete",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if seedTime < 0 || seedRatio < 0 {
				return errors.New("--seed-time and --seed-ratio must not be negative")
			}
			src, err := sourceArg(args, f.url)
			if err != nil {
				return err
			}
			g := getOptions{seedTime: seedTime, seedRatio: seedRatio, exitOnComplete: exitOnComplete}
			return runPeer(cmd, &f, src, out, true, g)
		},
	}
	f.register(cmd, "fast")
	fl := cmd.Flags()
	fl.StringVar(&out, "out", ".", "directory to download into")
	fl.DurationVar(&seedTime, "seed-time", 0, "after completion, seed this long then exit (0 = until interrupted)")
	fl.Float64Var(&seedRatio, "seed-ratio", 0, "after completion, seed until uploaded/size reaches this, then exit")
	fl.BoolVar(&exitOnComplete, "exit-on-complete", false, "exit as soon as the download is complete and verified")
	cmd.ValidArgsFunction = completeTorrent
	return cmd
}

// getOptions are get's own flags.
type getOptions struct {
	seedTime       time.Duration
	seedRatio      float64
	exitOnComplete bool
}

// sourceArg is the torrent given as the argument or by --url (not both).
func sourceArg(args []string, url string) (string, error) {
	switch {
	case len(args) == 1 && url != "":
		return "", fmt.Errorf("give the torrent either as an argument or with --url, not both")
	case len(args) == 1:
		return args[0], nil
	case url != "":
		return url, nil
	}
	return "", errors.New("no torrent: give a .torrent file, its URL (or --url) or a magnet link")
}

// isURL reports whether src is an http(s) URL.
func isURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// fetchTorrent downloads and parses a .torrent, bounded in size and time.
func fetchTorrent(ctx context.Context, c *http.Client, u string, lim metafile.Limits) (*metafile.Torrent, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("torrent URL %q: %w", u, err)
	}
	req.Header.Set("User-Agent", "webswarm-seedctl/"+version.Version)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, lim.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	t, err := lim.Parse(body) // refuses a body over lim.MaxSize
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return t, nil
}

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

// torrentSource is a resolved torrent: parsed, or a magnet still without metadata.
type torrentSource struct {
	t      *metafile.Torrent
	magnet *metainfo.Magnet
	dir    string // where the .torrent file is, for seed's default data dir
}

func resolveSource(ctx context.Context, c *http.Client, src string, lim metafile.Limits) (*torrentSource, error) {
	switch {
	case strings.HasPrefix(src, "magnet:"):
		m, err := metainfo.ParseMagnetUri(src)
		if err != nil {
			return nil, fmt.Errorf("magnet link: %w", err)
		}
		if len(m.Trackers) == 0 {
			return nil, errors.New("magnet link has no tr= tracker: seedctl finds peers only through trackers")
		}
		return &torrentSource{magnet: &m}, nil
	case isURL(src):
		t, err := fetchTorrent(ctx, c, src, lim)
		if err != nil {
			return nil, err
		}
		return &torrentSource{t: t, dir: "."}, nil
	}
	t, err := lim.Load(src)
	if err != nil {
		return nil, err
	}
	return &torrentSource{t: t, dir: filepath.Dir(src)}, nil
}

// runPeer is seed (download false) and get (download true).
func runPeer(cmd *cobra.Command, f *peerFlags, src, dir string, download bool, g getOptions) error {
	if err := f.validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	enc, _ := wire.ParseEncryption(f.encryption)
	mode, _ := resume.ParseMode(f.check)
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))

	bindHost := f.bind
	dialer, httpClient := boundClients(f.bind)

	limits, _ := f.limits.limits() // validated above
	source, err := resolveSource(ctx, httpClient, src, limits)
	if err != nil {
		return err
	}
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
	if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
		return fmt.Errorf("--state %s: %w", f.stateDir, err)
	}

	l, err := listenFirstFree(ctx, bindHost, f.minPort, f.maxPort)
	if err != nil {
		return err
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := session.NewMetrics(reg)
	if f.metrics != "" {
		stop, err := serveMetrics(f.metrics, reg)
		if err != nil {
			return err
		}
		defer stop()
	}

	peerID := newPeerID()
	var self []netip.AddrPort
	if a, ok := netip.AddrFromSlice(l.Addr().(*net.TCPAddr).IP); ok {
		self = append(self, netip.AddrPortFrom(a.Unmap(), port))
	}
	scfg := session.Config{
		PeerID:      peerID,
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

	t := source.t
	if t == nil {
		if !download {
			return errors.New("seed needs the .torrent: a magnet link has no payload description until it is fetched (use get)")
		}
		t, err = fetchMagnet(ctx, source.magnet, f, scfg, acfg, enc, l)
		if err != nil {
			return err
		}
		// Keep the .torrent so the download resumes from a file next time.
		if err := metafile.WriteFile(filepath.Join(f.stateDir, fmt.Sprintf("%x.torrent", t.InfoHash)), torrentFile(t, source.magnet.Trackers), true); err != nil {
			logger.Warn("cannot keep the fetched .torrent", "err", err)
		}
	}
	if name == "" {
		name = t.Name
	}

	known := func(ih bittorrent.InfoHash) bool { return ih == t.InfoHash }
	wcfg := &wire.Config{
		PeerID:     peerID,
		Reserved:   wire.DefaultReserved,
		Encryption: enc,
		Known:      known,
		InfoHashes: func(yield func(bittorrent.InfoHash) bool) { yield(t.InfoHash) },
	}
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
	j, err := job.New(job.Config{
		Torrent:    t,
		Name:       name,
		DataDir:    dir,
		ResumePath: filepath.Join(f.stateDir, fmt.Sprintf("%x.resume", t.InfoHash)),
		Download:   download,
		Check:      mode,
		Session:    scfg,
		Announce:   acfg,
		Logger:     logger,
		Watcher:    pw,
	})
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveDone := make(chan error, 1)
	go func() {
		serveDone <- session.Serve(runCtx, l, wcfg, func(ih bittorrent.InfoHash) *session.Torrent {
			if ih != t.InfoHash {
				return nil
			}
			return j.Session()
		}, f.conns.serve(f.maxConns, metrics))
	}()
	jobDone := make(chan error, 1)
	go func() { jobDone <- j.Run(runCtx) }()

	printer := newStatusPrinter(cmd.OutOrStdout(), outputMode(cmd.OutOrStdout(), f.asJSON))
	tick := time.NewTicker(f.display)
	defer tick.Stop()
	abs, _ := filepath.Abs(filepath.Join(dir, name))
	var completedAt time.Time
	done := j.Done()
	var runErr error
loop:
	for {
		select {
		case runErr = <-jobDone:
			break loop
		case <-done:
			done = nil
			completedAt = time.Now()
			if download && g.exitOnComplete {
				cancel()
			}
		case <-tick.C:
			st := j.Stats()
			if !f.quiet {
				v := viewOf(t, name, abs, st)
				if err := printer.Print(&v); err != nil {
					logger.Warn("status output", "err", err)
				}
			}
			if !completedAt.IsZero() && download && runCtx.Err() == nil {
				if g.seedTime > 0 && time.Since(completedAt) >= g.seedTime {
					cancel()
				}
				if g.seedRatio > 0 && t.Layout.Total > 0 && float64(st.Uploaded)/float64(t.Layout.Total) >= g.seedRatio {
					cancel()
				}
			}
		}
	}
	cancel()
	<-serveDone
	if !f.quiet {
		v := viewOf(t, name, abs, j.Stats())
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

// outputMode picks the status form: JSON lines, in-place block on a terminal, else lines.
func outputMode(w io.Writer, asJSON bool) string {
	if asJSON {
		return "json"
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "tty"
	}
	return "plain"
}

// viewOf turns a job's stats into the status view.
func viewOf(t *metafile.Torrent, name, saveTo string, st job.Stats) statusView {
	v := statusView{
		Name:         name,
		InfoHash:     fmt.Sprintf("%x", t.InfoHash),
		Size:         t.Layout.Total,
		State:        string(st.State),
		SaveTo:       saveTo,
		DownloadRate: float64(st.Session.DownloadRate),
		UploadRate:   float64(st.Session.UploadRate),
		Downloaded:   st.Downloaded,
		Uploaded:     st.Uploaded,
		Peers:        st.Session.Peers,
		Seeds:        st.Session.Seeds,
		ETA:          -1,
	}
	switch {
	case st.State == job.Checking && st.Check.Total > 0 && st.Session.NumPieces == 0:
		// The check at start; a seed re-checking changed files shows its verified pieces.
		v.Percent = 100 * float64(st.Check.Done) / float64(st.Check.Total)
	case st.Session.NumPieces > 0:
		if t.Layout.Total > 0 {
			v.Percent = 100 * float64(t.Layout.Total-st.Session.Left) / float64(t.Layout.Total)
		}
		if st.Session.Left == 0 {
			v.Percent, v.ETA = 100, 0
		} else if st.Session.DownloadRate > 0 {
			v.ETA = float64(st.Session.Left) / float64(st.Session.DownloadRate)
		}
	}
	switch {
	case st.Tracker.Failure != "":
		v.Tracker = "failure: " + st.Tracker.Failure
	case st.Tracker.Err != nil:
		v.Tracker = "error: " + trackerProblem(st.Tracker.Err)
	case st.Tracker.Warning != "":
		v.Tracker = "warning: " + st.Tracker.Warning
	}
	return v
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

// trackerProblem shortens an announce error for the status line: a failed HTTP request
// names the tracker's host and the cause, not the whole announce URL with its query.
func trackerProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return host + ": " + ue.Err.Error()
	}
	return err.Error()
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
