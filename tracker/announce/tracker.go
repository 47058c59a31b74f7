package announce

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// AllowList decides which torrents the tracker serves (bttrack's allowed_dir).
type AllowList interface {
	Allowed(ih bittorrent.InfoHash) bool
}

// Config is the tracker's announce policy. Zero fields take bttrack's defaults.
type Config struct {
	// Interval is the re-announce interval sent to clients (reannounce_interval, 30 min).
	Interval time.Duration
	// MinInterval is BEP 3's "min interval" (default: Interval / 2, at most Interval).
	MinInterval time.Duration
	// DefaultNumWant is how many peers a client that sends no numwant gets (response_size,
	// default 50; negative means none).
	DefaultNumWant int
	// MaxNumWant caps numwant (max_give, default 200; negative means none).
	MaxNumWant int
	// NATCheck is how many times to try connecting back to a new peer before giving up on it
	// (nat_check; 0 turns checking off).
	NATCheck int
	// NATHandshake makes a NAT check a BitTorrent handshake that must answer with the
	// announced info-hash and peer ID (bttrack's check) instead of a bare TCP connect. A
	// client that allows one connection per IP (libtorrent's default) may then drop its
	// connection to a seeder on the tracker's host: see natChecker.
	NATHandshake bool
	// NATTimeout bounds one NAT check (default 5 s); NATWorkers bounds concurrent checks
	// (default 32); NATQueue bounds the peers waiting for a check (default 10,000);
	// NATPerIP bounds the checks pending for one source, an IPv4 address or an IPv6 /64
	// (default 8). A peer the checker cannot take is handed out unchecked.
	NATTimeout time.Duration
	NATWorkers int
	NATQueue   int
	NATPerIP   int
	// PeerIDs hands out peer IDs in dictionary (compact=0) replies to clients that do not
	// send no_peer_id=1, as BEP 3 describes. Off by default: only very old clients need them,
	// and a peer ID is the handle for acting on a peer (see swarm.ErrIPChanged).
	PeerIDs bool
	// Allowed, when set, restricts the torrents served.
	Allowed AllowList
	// Logger receives NAT-check and policy messages (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Interval == 0 {
		c.Interval = 30 * time.Minute
	}
	if c.Interval < time.Second {
		return fmt.Errorf("announce interval %v is under 1s", c.Interval)
	}
	if c.MinInterval == 0 {
		c.MinInterval = c.Interval / 2
	}
	if c.MinInterval < 0 || c.MinInterval > c.Interval {
		return fmt.Errorf("min interval %v outside 0..interval (%v)", c.MinInterval, c.Interval)
	}
	if c.DefaultNumWant == 0 {
		c.DefaultNumWant = 50
	}
	if c.MaxNumWant == 0 {
		c.MaxNumWant = 200
	}
	c.DefaultNumWant, c.MaxNumWant = max(c.DefaultNumWant, 0), max(c.MaxNumWant, 0)
	c.DefaultNumWant = min(c.DefaultNumWant, c.MaxNumWant)
	if c.NATCheck < 0 {
		return fmt.Errorf("nat_check %d is negative", c.NATCheck)
	}
	if c.NATTimeout == 0 {
		c.NATTimeout = 5 * time.Second
	}
	if c.NATWorkers <= 0 {
		c.NATWorkers = 32
	}
	if c.NATQueue <= 0 {
		c.NATQueue = 10_000
	}
	if c.NATPerIP <= 0 {
		c.NATPerIP = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Tracker applies announce policy over a swarm.Store. It is safe for concurrent use.
type Tracker struct {
	cfg     Config
	store   swarm.Store
	metrics *Metrics
	nat     *natChecker
}

// New returns a Tracker over store, counting into metrics (see NewMetrics). Close stops its
// NAT checker.
func New(cfg Config, store swarm.Store, metrics *Metrics) (*Tracker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	t := &Tracker{cfg: cfg, store: store, metrics: metrics}
	if cfg.NATCheck > 0 {
		t.nat = newNATChecker(cfg, store, metrics)
	}
	return t, nil
}

// Config returns the policy in force (with defaults filled in).
func (t *Tracker) Config() Config { return t.cfg }

// Store returns the peer store.
func (t *Tracker) Store() swarm.Store { return t.store }

// Metrics returns the tracker's metrics.
func (t *Tracker) Metrics() *Metrics { return t.metrics }

// Close stops background NAT checks.
func (t *Tracker) Close() {
	if t.nat != nil {
		t.nat.close()
	}
}

// Announce serves one announce into resp (whose peer buffers it resets and reuses). A
// returned *ClientError is the client's mistake; any other error is the tracker's.
func (t *Tracker) Announce(req *Request, resp *Response) error {
	err := t.announce(req, resp)
	t.metrics.observeAnnounce(req.Event, err)
	return err
}

func (t *Tracker) announce(req *Request, resp *Response) error {
	resp.Peers.Reset()
	resp.Warning = ""
	resp.Counts = swarm.Counts{}
	resp.Interval, resp.MinInterval = t.cfg.Interval, t.cfg.MinInterval
	if req.Port == 0 {
		return Errorf(CodeBadPort, "invalid port 0")
	}
	if !req.Addr.IsValid() {
		return Errorf(CodeBadIP, "no usable client address")
	}
	if t.cfg.Allowed != nil && !t.cfg.Allowed.Allowed(req.InfoHash) {
		return &ClientError{Code: CodeNotAllowed, Reason: NotAuthorized}
	}
	want := req.NumWant
	if want < 0 {
		want = t.cfg.DefaultNumWant
	}
	want = min(want, t.cfg.MaxNumWant)
	if req.Event == swarm.Stopped {
		want = 0
	}
	if !t.cfg.PeerIDs {
		req.NoPeerID = true
	}
	if req.Compact {
		resp.Peers.Format = swarm.Compact
	} else {
		resp.Peers.Format = swarm.WithID
	}
	a := &resp.ann
	*a = swarm.Announce{
		InfoHash: req.InfoHash,
		PeerID:   req.PeerID,
		Addr:     netipAddrPort(req.Addr, req.Port),
		Key:      req.Key,
		Left:     req.Left,
		Event:    req.Event,
		NumWant:  want,
		Hidden:   t.nat != nil,
	}
	res, err := t.store.Announce(a, &resp.Peers)
	resp.Counts = res.Counts
	switch {
	case errors.Is(err, swarm.ErrPeerIDTaken):
		return &ClientError{Code: CodePeerIDTaken, Reason: err.Error()}
	case errors.Is(err, swarm.ErrIPChanged):
		return &ClientError{Code: CodeIPChanged, Reason: err.Error()}
	case errors.Is(err, swarm.ErrTooManyTorrents):
		return &ClientError{Code: CodeTrackerFull, Reason: err.Error()}
	case errors.Is(err, swarm.ErrTooManyPeers):
		return &ClientError{Code: CodeTorrentFull, Reason: err.Error()}
	case errors.Is(err, swarm.ErrTrackerPeersFull):
		return &ClientError{Code: CodePeersFull, Reason: err.Error()}
	case errors.Is(err, swarm.ErrTooManyPeersFromIP):
		return &ClientError{Code: CodeIPFull, Reason: err.Error()}
	case errors.Is(err, swarm.ErrUnavailable):
		// A shared store that is down or failing over: the client retries in a minute (BEP 31).
		return &ClientError{Code: CodeStoreDown, Reason: swarm.ErrUnavailable.Error(), RetryIn: 1}
	case err != nil:
		return fmt.Errorf("announce %v: %w", req.InfoHash, err)
	}
	if res.Hidden && t.nat != nil {
		t.nat.enqueue(req.InfoHash, req.PeerID, a.Addr)
	}
	return nil
}

// Scrape returns a torrent's counts; ok is false for a torrent the tracker does not serve or
// does not know (BEP 48 leaves it out of "files").
func (t *Tracker) Scrape(ih bittorrent.InfoHash) (c swarm.Counts, ok bool) {
	if t.cfg.Allowed != nil && !t.cfg.Allowed.Allowed(ih) {
		return c, false
	}
	return t.store.Scrape(ih)
}
