package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Defaults of Config fields left zero.
const (
	// DefaultRescanInterval is how often the directory is walked again: inotify misses
	// changes on NFS and some other mounts.
	DefaultRescanInterval = 5 * time.Minute
	// DefaultRetryInterval is the first wait before a torrent in error (payload missing or
	// failing verification) is checked again; it doubles up to MaxRetryInterval.
	DefaultRetryInterval = time.Minute
	// MaxRetryInterval caps the wait between checks of a torrent in error.
	MaxRetryInterval = time.Hour
	// DefaultIdleTimeout: a torrent's session is stopped after this long without peers; the
	// torrent keeps seeding (announced, served on the next connection).
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxConns is the global connection limit.
	DefaultMaxConns = 500
	// DefaultAnnounceWorkers bounds the announces in flight at once.
	DefaultAnnounceWorkers = 16
	// DefaultAnnounceRate bounds announces per second across all torrents, so that
	// thousands of torrents started together reach their trackers spread out.
	DefaultAnnounceRate = 100
	// DefaultStopTimeout bounds the stopped announces and the state flush at shutdown
	// (under the 10 s a service manager usually waits after SIGTERM).
	DefaultStopTimeout = 8 * time.Second
	// DefaultStopWorkers bounds the stopped announces sent at once at shutdown.
	DefaultStopWorkers = 64
	// DefaultScrapeInterval is how often a torrent that does not announce (paused, queued,
	// in error) is scraped for the tracker's counts.
	DefaultScrapeInterval = 30 * time.Minute
	// DefaultMetricsMaxTorrents bounds the torrents with per-torrent metric series.
	DefaultMetricsMaxTorrents = 500
	// settleDelay is how long the watcher waits after the last event on a path before
	// reading it: a .torrent is usually written in a few writes.
	settleDelay = 100 * time.Millisecond
)

// ErrLocked is returned by New when another agent holds the state directory's lock.
var ErrLocked = errors.New("another seedctl agent is using this state directory")

// Config is what an Agent needs. Dir, StateDir and PeerID are required.
type Config struct {
	// Dir is watched for .torrent files, recursively.
	Dir string
	// Data holds every torrent's payload (file or top folder); empty means beside each
	// .torrent (the publish layout: big.iso beside big.iso.torrent).
	Data string
	// StateDir holds the lock file, the resume records and the agent's own state.
	StateDir string
	// Listener accepts peer connections for every torrent; nil means Listen is listened on.
	Listener net.Listener
	// Listen is the peer listen address when Listener is nil (default ":6881").
	Listen string
	// PeerID is ours, on every connection and announce.
	PeerID bittorrent.PeerID
	// Dialer makes outgoing peer connections (its LocalAddr pins the source address); nil
	// means a default dialer.
	Dialer *net.Dialer
	// Encryption is the MSE policy.
	Encryption wire.Encryption
	// MaxActive bounds the torrents seeding at once; others wait in state queued. 0 is no
	// limit.
	MaxActive int
	// MaxConns is the global connection limit (default DefaultMaxConns).
	MaxConns int
	// MaxUploads is each session's number of upload slots (default the session's).
	MaxUploads int
	// Serve bounds the peer listener's handshakes (zero fields: the session's defaults);
	// its MaxConns and Metrics are the agent's.
	Serve session.ServeConfig
	// MaxConnsPerIP and UploadStallTimeout are each session's (zero: the session's
	// defaults).
	MaxConnsPerIP      int
	UploadStallTimeout time.Duration
	// UploadRate is the global upload cap in bytes per second; TorrentUploadRate each
	// torrent's. 0 is unlimited.
	UploadRate, TorrentUploadRate int
	// CheckWorkers bounds the torrents checked at once (default max(2, GOMAXPROCS));
	// a full check of one torrent hashes with one goroutine per check worker.
	CheckWorkers int
	// NoWatch turns fsnotify off: only the periodic rescan (and SIGHUP) find changes, and
	// running sessions find payload changes by their poll alone.
	NoWatch bool
	// PayloadPoll is how often a running session stats its payload files to find them
	// changed (session.Config.PayloadCheckInterval: 0 is
	// session.DefaultPayloadCheckInterval, negative never: file notifications only).
	PayloadPoll time.Duration
	// RescanInterval is how often Dir is walked again (default DefaultRescanInterval).
	RescanInterval time.Duration
	// TorrentLimits bound each .torrent read, from Dir and through Add (zero fields: the
	// metafile defaults).
	TorrentLimits metafile.Limits
	// ScrapeInterval is how often torrents that do not announce are scraped (default
	// DefaultScrapeInterval).
	ScrapeInterval time.Duration
	// RetryInterval is the first wait before a torrent in error is checked again (default
	// DefaultRetryInterval); it doubles at each failure up to MaxRetryInterval.
	RetryInterval time.Duration
	// IdleTimeout stops a session without peers (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Announce is the template of every torrent's tracker client (Interval, NumWant, IP,
	// Timeout, HTTP...); the agent fills the rest.
	Announce announcer.Config
	// AnnounceWorkers bounds announces in flight (default DefaultAnnounceWorkers);
	// AnnounceRate announces per second across all torrents (default DefaultAnnounceRate).
	AnnounceWorkers int
	AnnounceRate    float64
	// StopTimeout bounds the stopped announces at shutdown (default DefaultStopTimeout).
	StopTimeout time.Duration
	// WebRTC, when set, serves browsers (and other WebRTC peers): every torrent listing a
	// ws:// or wss:// tracker announces to it over WebSocket and takes peers over data
	// channels into the same session as its TCP peers. Such a torrent keeps its session
	// running while it seeds (the WebSocket announce lives in the session), instead of
	// starting it on demand. One Transport serves every torrent, so its MaxPeers is the
	// agent's cap; it holds nothing of its own once every session has stopped, which Run
	// waits for. nil: no WebRTC.
	WebRTC *rtc.Transport
	// WebRTCTorrentPeers bounds each torrent's WebRTC peers (0: rtc.DefaultTorrentPeers).
	WebRTCTorrentPeers int
	// Registry receives the agent's metrics; nil registers none.
	Registry prometheus.Registerer
	// MetricsMaxTorrents bounds the torrents with per-torrent series (default
	// DefaultMetricsMaxTorrents; negative: none).
	MetricsMaxTorrents int
	// Version is reported in Status and the peers' extended handshake.
	Version string
	// Logger receives the agent's events; nil means slog.Default().
	Logger *slog.Logger
}

// setDefaults fills zero fields and validates the rest.
func (c *Config) setDefaults() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: no directory to watch", ErrInvalid)
	case c.StateDir == "":
		return fmt.Errorf("%w: no state directory", ErrInvalid)
	case c.PeerID == bittorrent.PeerID{}:
		return fmt.Errorf("%w: no peer ID", ErrInvalid)
	case c.MaxActive < 0 || c.MaxConns < 0 || c.UploadRate < 0 || c.TorrentUploadRate < 0 || c.CheckWorkers < 0:
		return fmt.Errorf("%w: negative limit", ErrInvalid)
	case c.Serve.MaxHandshakes < 0 || c.Serve.MaxHandshakesPerIP < 0 || c.Serve.FirstByteTimeout < 0 || c.Serve.HandshakeTimeout < 0 || c.MaxConnsPerIP < 0 || c.UploadStallTimeout < 0 || c.WebRTCTorrentPeers < 0:
		return fmt.Errorf("%w: negative peer connection limit", ErrInvalid)
	}
	if c.Listen == "" {
		c.Listen = ":6881"
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.CheckWorkers == 0 {
		c.CheckWorkers = max(2, runtime.GOMAXPROCS(0))
	}
	c.TorrentLimits = c.TorrentLimits.WithDefaults()
	if c.RescanInterval <= 0 {
		c.RescanInterval = DefaultRescanInterval
	}
	if c.ScrapeInterval <= 0 {
		c.ScrapeInterval = DefaultScrapeInterval
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.AnnounceWorkers <= 0 {
		c.AnnounceWorkers = DefaultAnnounceWorkers
	}
	if c.AnnounceRate <= 0 {
		c.AnnounceRate = DefaultAnnounceRate
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.MetricsMaxTorrents == 0 {
		c.MetricsMaxTorrents = DefaultMetricsMaxTorrents
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Announce.HTTP == nil {
		// One client for every torrent's tracker, keeping connections to the few trackers
		// there are instead of one per torrent.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = max(c.AnnounceWorkers, DefaultStopWorkers)
		c.Announce.HTTP = &http.Client{Transport: tr}
	}
	return nil
}
