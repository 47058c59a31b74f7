package wsapi

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Config configures a Server. The zero value of a field means its default; the limits take
// a negative value for "none" where the field says so.
type Config struct {
	// Interval is the re-announce interval told to clients (default 2 min: bittorrent-tracker
	// gives WebSocket clients a fifth of its HTTP interval).
	Interval time.Duration
	// PeerTimeout drops a peer from a torrent it has not announced within (the socket staying
	// open). Default 2 × Interval + 1 min.
	PeerTimeout time.Duration
	// DefaultNumWant is the number of offers relayed when an announce has no numwant
	// (default MaxOffers).
	DefaultNumWant int
	// MaxOffers bounds the offers of one announce; more refuse the message (default 10).
	MaxOffers int
	// MaxMessage bounds a message's size in bytes; a larger one closes the connection
	// (default 64 KiB).
	MaxMessage int64
	// OfferTTL is how long an offer waits for its answer (default 120 s).
	OfferTTL time.Duration
	// MaxPendingOffers bounds the offers of one connection waiting for an answer; offers
	// over it are not relayed (default 100).
	MaxPendingOffers int
	// MaxSwarms bounds the torrents one connection announces at once (default 100).
	MaxSwarms int
	// MaxPeers bounds the WebSocket peers of one torrent (default 100,000; negative: none).
	MaxPeers int
	// MaxConns bounds the WebSocket connections open at once (default 10,000; negative: none).
	MaxConns int
	// MaxConnsPerIP bounds them per client: an IPv4 address or an IPv6 /64 (default 32;
	// negative: none).
	MaxConnsPerIP int
	// IdleTimeout closes a connection that sent nothing, not even a pong, for this long
	// (default 180 s).
	IdleTimeout time.Duration
	// PingInterval is how often every connection is pinged; it must be below IdleTimeout and
	// below the proxies' read timeouts (default 30 s: nginx's proxy_read_timeout is 60 s).
	PingInterval time.Duration
	// WriteTimeout bounds writing one message to a peer that does not read (default 10 s);
	// a peer that stays stuck longer is closed.
	WriteTimeout time.Duration
	// MaxBadMessages closes a connection after this many malformed messages (default 5).
	MaxBadMessages int
	// MaxScrapeHashes bounds the info-hashes of one scrape (default 1000).
	MaxScrapeHashes int
	// Store is the tracker's store of HTTP and UDP peers: its counts join every WebSocket
	// reply, and WebSocket completions are counted there, once per peer, so that they are
	// saved with the others. Nil: WebSocket peers and completions alone.
	Store Store
	// Relay, when set, relays offers and answers to and from peers connected to other
	// tracker instances (its owner starts nothing: New calls Start, and the owner closes
	// it after the Server).
	Relay Relay
	// MaxRelayPending bounds the offers from other instances waiting here for their
	// answer; more are dropped (default 10,000).
	MaxRelayPending int
	// Allowed, when set, restricts the torrents served (--allowed_dir).
	Allowed func(ih bittorrent.InfoHash) bool
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger receives errors (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	noPoll bool // tests: a goroutine per connection, as where there is no poller
}

func (c *Config) setDefaults() error {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	def(&c.Interval, 2*time.Minute)
	def(&c.PeerTimeout, 2*c.Interval+time.Minute)
	def(&c.OfferTTL, 120*time.Second)
	def(&c.IdleTimeout, 180*time.Second)
	def(&c.PingInterval, 30*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	defInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	defInt(&c.MaxOffers, 10)
	defInt(&c.DefaultNumWant, c.MaxOffers)
	defInt(&c.MaxPendingOffers, 100)
	defInt(&c.MaxSwarms, 100)
	defInt(&c.MaxPeers, 100_000)
	defInt(&c.MaxConns, 10_000)
	defInt(&c.MaxConnsPerIP, 32)
	defInt(&c.MaxBadMessages, 5)
	defInt(&c.MaxScrapeHashes, 1000)
	defInt(&c.MaxRelayPending, 10_000)
	if c.MaxMessage == 0 {
		c.MaxMessage = 64 << 10
	}
	switch {
	case c.Interval < 0 || c.PeerTimeout < 0 || c.OfferTTL < 0 || c.IdleTimeout < 0 || c.PingInterval < 0 || c.WriteTimeout < 0:
		return fmt.Errorf("wsapi: negative duration")
	case c.PingInterval >= c.IdleTimeout:
		return fmt.Errorf("wsapi: ping interval %v must be below the idle timeout %v", c.PingInterval, c.IdleTimeout)
	case c.MaxOffers < 0 || c.DefaultNumWant < 0 || c.MaxPendingOffers < 0 || c.MaxSwarms < 0 || c.MaxBadMessages < 0 || c.MaxScrapeHashes < 0 || c.MaxRelayPending < 0:
		return fmt.Errorf("wsapi: negative limit")
	case c.MaxMessage < 256:
		return fmt.Errorf("wsapi: message size limit %d below 256 bytes", c.MaxMessage)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
