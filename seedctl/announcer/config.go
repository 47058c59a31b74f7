package announcer

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Defaults of Config and of Scrape.
const (
	// DefaultNumWant is the numwant sent when Config.NumWant is 0 (aria2 and mainline ask
	// for 50).
	DefaultNumWant = 50
	// DefaultInterval is used when a tracker gives no interval (mainline's
	// --rerequest-interval).
	DefaultInterval = 300 * time.Second
	// DefaultTimeout bounds one HTTP announce or scrape.
	DefaultTimeout = 30 * time.Second
	// DefaultUDPTimeout is BEP 15's first wait for a reply; it doubles at each retransmission.
	DefaultUDPTimeout = 15 * time.Second
	// DefaultUDPRetries is the number of retransmissions after the first send. BEP 15 allows
	// up to 8 (a last wait of 3840 s); 3 gives up after 225 s, so that a dead UDP tracker
	// holds up the move to the next one (BEP 12) for minutes rather than hours.
	DefaultUDPRetries = 3
	// DefaultBackoff is the first delay after a failed announce; it doubles at each further
	// failure, up to the announce interval.
	DefaultBackoff = 15 * time.Second
	// MaxReplySize bounds an HTTP reply body.
	MaxReplySize = 1 << 20
	// maxInterval caps the interval a tracker may ask for (a hostile or broken tracker
	// could otherwise silence us for years).
	maxInterval = 24 * time.Hour
	// connIDLifetime is how long a BEP 15 connection ID is used: one minute, as BEP 15 says.
	connIDLifetime = time.Minute
)

// Progress is what an announce reports of the transfer.
type Progress struct {
	Uploaded, Downloaded, Left int64
}

// Config configures an Announcer. Zero fields take the defaults named beside them.
type Config struct {
	// Tiers is the torrent's announce-list (BEP 12), or [[announce]]. URLs are http, https or
	// udp; a URL given twice is used once (its first place counts). Empty tiers are dropped.
	Tiers    [][]string
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	// Port is the listen port announced (must not be 0).
	Port uint16
	// IP, when set, is sent as ip= (mainline's --ip); an IPv4 address also fills BEP 15's IP
	// field.
	IP string
	// Self lists the addresses this peer listens on; a tracker's reply never yields them as
	// peers.
	Self []netip.AddrPort
	// NumWant is the number of peers asked for (default 50; "stopped" asks for none).
	NumWant int
	// Interval is the announce interval when a tracker gives none (mainline's
	// --rerequest-interval; default 300 s).
	Interval time.Duration
	// MinPeers: while fewer peers than this are connected (PeerCount), announce as often as
	// the tracker's min interval allows. 0 turns this off.
	MinPeers  int
	PeerCount func() int
	// Progress is called for every announce; nil reports zeros.
	Progress func() Progress
	// HTTP is the client for HTTP(S) trackers (default: a client of its own over
	// http.DefaultTransport).
	HTTP *http.Client
	// Timeout bounds one HTTP announce (default 30 s).
	Timeout time.Duration
	// UDPTimeout is BEP 15's first wait for a UDP reply (default 15 s), doubled at each of
	// UDPRetries retransmissions (default 3; negative means none).
	UDPTimeout time.Duration
	UDPRetries int
	// Backoff is the first delay after a failed announce (default 15 s).
	Backoff time.Duration
	// Logger receives failures (Warn when a tracker starts failing) and per-announce detail
	// (Debug). Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Port == 0 {
		return fmt.Errorf("announcer: port 0")
	}
	if c.NumWant == 0 {
		c.NumWant = DefaultNumWant
	}
	if c.NumWant < 0 {
		return fmt.Errorf("announcer: numwant %d is negative", c.NumWant)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < time.Second {
		return fmt.Errorf("announcer: interval %v is under 1s", c.Interval)
	}
	if c.MinPeers < 0 {
		return fmt.Errorf("announcer: min peers %d is negative", c.MinPeers)
	}
	if c.MinPeers > 0 && c.PeerCount == nil {
		return fmt.Errorf("announcer: min peers %d without a peer count", c.MinPeers)
	}
	// mainline's --ip also takes a host name, which the tracker resolves: only the length
	// is checked.
	if len(c.IP) > 253 {
		return fmt.Errorf("announcer: ip %.20q...: longer than a host name", c.IP)
	}
	if c.Progress == nil {
		c.Progress = func() Progress { return Progress{} }
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.UDPTimeout == 0 {
		c.UDPTimeout = DefaultUDPTimeout
	}
	if c.UDPRetries == 0 {
		c.UDPRetries = DefaultUDPRetries
	}
	c.UDPRetries = max(c.UDPRetries, 0)
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.Timeout < 0 || c.UDPTimeout < 0 || c.Backoff < 0 {
		return fmt.Errorf("announcer: negative timeout or back-off")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for i, a := range c.Self {
		c.Self[i] = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return nil
}

// isWebSocketTracker reports whether raw is a ws:// or wss:// (WebTorrent) tracker URL.
func isWebSocketTracker(raw string) bool {
	scheme, _, ok := strings.Cut(raw, "://")
	return ok && (strings.EqualFold(scheme, "ws") || strings.EqualFold(scheme, "wss"))
}

// parseTrackerURL checks that raw is an http, https or udp URL with a host (and, for udp,
// a port). The error names raw.
func parseTrackerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("tracker %q: %w: %w", raw, ErrBadURL, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("tracker %q: %w: no host", raw, ErrBadURL)
		}
	case "udp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("tracker %q: %w: udp needs host:port", raw, ErrBadURL)
		}
	default:
		return nil, fmt.Errorf("tracker %q: %w: scheme %q is not http, https or udp", raw, ErrBadURL, u.Scheme)
	}
	return u, nil
}

// redact returns u without its query and user info, for logs and errors: private trackers
// put pass keys there.
func redact(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}
