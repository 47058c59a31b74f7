package session

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/session/choker"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Defaults of Config and fixed protocol timings.
const (
	// DefaultMaxConns is the per-torrent connection limit.
	DefaultMaxConns = 80
	// DefaultMaxConnsPerIP bounds a torrent's connections with one IPv4 address or IPv6
	// /64. libtorrent allows one; more lets several clients behind one NAT (a household, a
	// carrier-grade NAT) each get through, and 8 of 80 still leaves most of a torrent's
	// connections to other hosts.
	DefaultMaxConnsPerIP = 8
	// DefaultUploadStallTimeout: an unchoked peer whose socket took none of our data for
	// this long is choked, and its slot goes to another peer. It is disconnected after
	// WriteTimeout.
	DefaultUploadStallTimeout = 10 * time.Second
	// DefaultMaxInitiate is mainline's --max-initiate: no outgoing connections once a
	// torrent has this many peers.
	DefaultMaxInitiate = 35
	// HandshakeTimeout bounds a handshake (BEP 3 and MSE), in and out.
	HandshakeTimeout = 20 * time.Second
	// IdleTimeout ends a connection that sent nothing, not even a keep-alive, for this long.
	IdleTimeout = 2 * time.Minute
	// KeepAliveInterval is how long we stay silent before sending a keep-alive.
	KeepAliveInterval = 90 * time.Second
	// WriteTimeout ends a connection that has not taken our data for this long.
	WriteTimeout = 60 * time.Second
	// SnubTimeout: a peer that leaves our requests unanswered this long is snubbed
	// (mainline's snub_time is 30 s; 60 s as libtorrent, for slow links).
	SnubTimeout = 60 * time.Second
	// ReqQ is the number of REQUESTs we queue per peer (advertised as reqq); more are
	// rejected (Fast) or dropped.
	ReqQ = 500
	// AllowedFastCount is the size of the allowed-fast set we give a new peer (BEP 6 says 10).
	AllowedFastCount = 10
	// BanThreshold is the number of failed pieces a peer may contribute to before it is
	// banned from the torrent.
	BanThreshold = 3
	// Version is the client version in the extended handshake when Config.Version is empty.
	Version = "0.1"
)

// Config is how a Torrent connects and serves. The zero value of an optional field takes
// the default given with it.
type Config struct {
	// PeerID is ours, the same on every connection and in every announce.
	PeerID bittorrent.PeerID
	// ListenPort is announced in the extended handshake (p), 0 for none.
	ListenPort uint16
	// Wire configures outgoing connections (encryption policy, reserved bits); nil means
	// plaintext preferred-MSE defaults with our PeerID. Its PeerID must equal PeerID.
	Wire *wire.Config
	// Dialer opens outgoing connections; LocalAddr may pin the source address. Nil: a
	// plain net.Dialer.
	Dialer *net.Dialer
	// MaxUploads is the number of regular upload slots (mainline --max-uploads, 7).
	MaxUploads int
	// MaxConns bounds the torrent's connections, in and out (80).
	MaxConns int
	// MaxConnsPerIP bounds the torrent's connections with one IPv4 address or IPv6 /64,
	// in and out (DefaultMaxConnsPerIP).
	MaxConnsPerIP int
	// UploadStallTimeout chokes a peer whose socket has taken none of our data for this
	// long: it does not read, and must not hold an upload slot (DefaultUploadStallTimeout).
	UploadStallTimeout time.Duration
	// MaxInitiate: no outgoing connections once the torrent has this many peers (35).
	MaxInitiate int
	// UploadRate and DownloadRate are global caps shared by every torrent; nil is
	// unlimited. Their burst should be at least 256 KiB (a batch of blocks).
	UploadRate, DownloadRate *rate.Limiter
	// TorrentUploadRate and TorrentDownloadRate cap this torrent alone, in bytes per
	// second; 0 is unlimited.
	TorrentUploadRate, TorrentDownloadRate int
	// WebSeeds are BEP 19 URLs used beside peers while downloading.
	WebSeeds []string
	// HTTP is the client for web seeds; nil gives each web seed a client of its own
	// (keep-alive, as many connections as it runs requests at once).
	HTTP *http.Client
	// Logger receives connection-level events at debug level and problems at warn; nil
	// discards.
	Logger *slog.Logger
	// Metrics counts for Prometheus (NewMetrics); nil counts nothing.
	Metrics *Metrics
	// Version follows "webswarm " in the extended handshake's v (Version when empty).
	Version string
	// ChokerSeed fixes the choker's random source (tests); 0 is random.
	ChokerSeed uint64
	// PayloadCheckInterval is how often a seeding torrent stats its payload files to
	// find them changed (DefaultPayloadCheckInterval when 0; negative: never, only when
	// PayloadChanged says so). Files are also checked whenever one is opened again.
	PayloadCheckInterval time.Duration
}

// ErrConfig is wrapped by every error about a Config.
var ErrConfig = errors.New("session: bad config")

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.MaxUploads < 0:
		return c, fmt.Errorf("%w: MaxUploads %d", ErrConfig, c.MaxUploads)
	case c.MaxConns < 0:
		return c, fmt.Errorf("%w: MaxConns %d", ErrConfig, c.MaxConns)
	case c.MaxConnsPerIP < 0:
		return c, fmt.Errorf("%w: MaxConnsPerIP %d", ErrConfig, c.MaxConnsPerIP)
	case c.UploadStallTimeout < 0:
		return c, fmt.Errorf("%w: UploadStallTimeout %v", ErrConfig, c.UploadStallTimeout)
	case c.MaxInitiate < 0:
		return c, fmt.Errorf("%w: MaxInitiate %d", ErrConfig, c.MaxInitiate)
	case c.TorrentUploadRate < 0 || c.TorrentDownloadRate < 0:
		return c, fmt.Errorf("%w: negative rate", ErrConfig)
	case c.Wire != nil && c.Wire.PeerID != c.PeerID:
		return c, fmt.Errorf("%w: Wire.PeerID differs from PeerID", ErrConfig)
	}
	if c.MaxUploads == 0 {
		c.MaxUploads = choker.DefaultSlots
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.UploadStallTimeout == 0 {
		c.UploadStallTimeout = DefaultUploadStallTimeout
	}
	if c.MaxInitiate == 0 {
		c.MaxInitiate = DefaultMaxInitiate
	}
	if c.Wire == nil {
		c.Wire = &wire.Config{PeerID: c.PeerID, Reserved: wire.DefaultReserved}
	}
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = Version
	}
	return c, nil
}

// limiter returns a limiter of bytesPerSec (nil when 0) whose burst holds a batch of blocks.
func limiter(bytesPerSec int) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), max(bytesPerSec, maxBatchBytes))
}
