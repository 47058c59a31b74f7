package rtc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Defaults of ClientConfig.
const (
	DefaultOffersPerAnnounce = 5
	DefaultTorrentPeers      = 50
	DefaultMaxPending        = 10
	// DefaultOfferTTL is how long an offer waits for its answer: webtorrent's 50 s, below
	// the tracker's offer age (tracker/wsapi's default is 120 s).
	DefaultOfferTTL = 50 * time.Second
	// DefaultInterval is the re-announce interval when the tracker sends none.
	DefaultInterval = 2 * time.Minute
	// maxTrackerMessage bounds one message from the tracker (an SDP is a few KiB).
	maxTrackerMessage = 64 << 10
	minBackoff        = time.Second
	maxBackoff        = 5 * time.Minute
	writeTimeout      = 10 * time.Second
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the tracker's ws:// or wss:// announce URL.
	URL string
	// InfoHash is the torrent's; PeerID is ours.
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	// Transport makes the PeerConnections.
	Transport *Transport
	// HandleConn takes each open connection, outgoing (our offer) or not, and owns it from
	// then on. It is called on the connection's own goroutine, so it may run the wire
	// handshake; Run waits for it.
	HandleConn func(c net.Conn, outgoing bool)
	// Left reports the bytes we still miss (0: we seed); nil means 0.
	Left func() int64
	// Offers is how many offers one announce carries, at most (default 5).
	Offers int
	// MaxPeers bounds this torrent's peers at once: connections opening and open (default
	// 50). Offers waiting for an answer are bounded by MaxPending and the Transport's
	// MaxOffers instead; none is made while the torrent has MaxPeers peers.
	MaxPeers int
	// MaxPending bounds the offers waiting for an answer (default 10).
	MaxPending int
	// OfferTTL closes an offer not answered within it (default 50 s).
	OfferTTL time.Duration
	// Dialer dials the tracker (nil: websocket.DefaultDialer); for wss:// its TLS config
	// applies. The Clients of one Transport share a socket to a URL, dialled with the
	// Dialer of the Client that opened it.
	Dialer *websocket.Dialer
	// Log is where connection trouble is told (nil: slog.Default()).
	Log *slog.Logger
}

// Client announces one torrent to one WebSocket tracker and turns the offers and answers it
// relays into connections.
type Client struct {
	cfg ClientConfig
	m   *Metrics

	mu      sync.Mutex
	peers   int // peers of this torrent: opening and connected
	pending map[[20]byte]*pendingOffer

	inbox chan trackerMessage // from the socket, for this torrent
	up    chan struct{}       // the socket connected
	// Completed's signal to Run, buffered: one pending at most
	completed chan struct{}

	wg sync.WaitGroup // connection goroutines
}

type pendingOffer struct {
	o       *Offer
	expires time.Time
}

// NewClient checks cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Transport == nil || cfg.HandleConn == nil {
		return nil, errors.New("rtc: client needs a Transport and HandleConn")
	}
	if cfg.Offers <= 0 {
		cfg.Offers = DefaultOffersPerAnnounce
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultTorrentPeers
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.OfferTTL <= 0 {
		cfg.OfferTTL = DefaultOfferTTL
	}
	if cfg.Dialer == nil {
		cfg.Dialer = websocket.DefaultDialer
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Client{cfg: cfg, m: cfg.Transport.cfg.Metrics, pending: map[[20]byte]*pendingOffer{},
		inbox: make(chan trackerMessage, inboxSize), up: make(chan struct{}, 1),
		completed: make(chan struct{}, 1)}, nil
}

// Completed tells the tracker that the download is complete (event "completed", left 0)
// without waiting for the next re-announce, which may be minutes away: until then the
// tracker would count us as a leecher and not count the completion. Run sends it at once,
// or on its next connection to the tracker. It never blocks.
func (c *Client) Completed() {
	select {
	case c.completed <- struct{}{}:
	default:
	}
}

// Peers is the number of this torrent's peers: connections opening and open.
func (c *Client) Peers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers
}

// take reserves a torrent slot; the returned release gives it back, once.
func (c *Client) take() (func(), bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peers >= c.cfg.MaxPeers {
		c.m.refuse("torrent_cap")
		return nil, false
	}
	c.peers++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.peers--
			c.mu.Unlock()
		})
	}, true
}

// Run announces until ctx ends or the Transport closes, on the WebSocket to its URL that
// the Transport shares among the Clients of many torrents, then announces "stopped",
// closes every offer and waits for the connections being opened. Connections already
// handed to HandleConn are its to close.
func (c *Client) Run(ctx context.Context) error {
	s, err := c.cfg.Transport.join(c)
	if err != nil {
		return err
	}
	defer func() {
		c.cfg.Transport.leave(s, c)
		c.expire(time.Time{}) // every offer
		c.wg.Wait()
	}()
	event := "started"
	interval := DefaultInterval
	reannounce := time.NewTimer(interval)
	reannounce.Stop() // until connected
	defer reannounce.Stop()
	expiry := time.NewTicker(max(c.cfg.OfferTTL/4, 100*time.Millisecond))
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			c.stopped(s.send)
			return nil
		case <-c.cfg.Transport.done:
			return ErrClosed
		case <-c.up:
			if err := c.announce(ctx, s, event); err != nil {
				c.cfg.Log.Debug("webrtc announce", "url", c.cfg.URL, "err", err)
			} else {
				event = ""
			}
			reannounce.Reset(interval)
		case <-reannounce.C:
			if err := c.announce(ctx, s, ""); err != nil {
				c.cfg.Log.Debug("webrtc announce", "url", c.cfg.URL, "err", err)
			}
			reannounce.Reset(interval)
		case <-c.completed:
			if err := c.announce(ctx, s, "completed"); err != nil {
				c.cfg.Log.Debug("webrtc announce", "url", c.cfg.URL, "err", err)
				event = "completed" // lost with this connection: told on the next one
			}
			reannounce.Reset(interval)
		case <-expiry.C:
			c.expire(time.Now())
		case m := <-c.inbox:
			switch {
			case m.Failure != "":
				c.cfg.Log.Warn("webrtc tracker refused", "url", c.cfg.URL, "reason", m.Failure)
			case m.Offer != nil:
				c.answer(ctx, s.send, m)
			case m.Answer != nil:
				c.connect(ctx, m)
			case m.Interval > 0:
				if d := time.Duration(m.Interval) * time.Second; d != interval {
					interval = d
					reannounce.Reset(interval)
				}
			}
		}
	}
}

// connected tells c that its socket has (again) a tracker connection: c announces.
func (c *Client) connected() {
	select {
	case c.up <- struct{}{}:
	default:
	}
}

// trackerMessage is what the tracker sends: a reply to our announce, a relayed offer or a
// relayed answer.
type trackerMessage struct {
	Action   string                     `json:"action"`
	Interval int                        `json:"interval"`
	InfoHash string                     `json:"info_hash"`
	PeerID   string                     `json:"peer_id"`
	OfferID  string                     `json:"offer_id"`
	Offer    *webrtc.SessionDescription `json:"offer"`
	Answer   *webrtc.SessionDescription `json:"answer"`
	Failure  string                     `json:"failure reason"`
	Warning  string                     `json:"warning message"`
}

func (c *Client) left() int64 {
	if c.cfg.Left == nil {
		return 0
	}
	return c.cfg.Left()
}

// announce makes as many offers as there is room for (lazily: only now, and only while
// connected) and sends them.
func (c *Client) announce(ctx context.Context, s *socket, event string) error {
	c.expire(time.Now())
	if !s.isConnected() {
		return errNotConnected
	}
	c.mu.Lock()
	n := min(c.cfg.Offers, c.cfg.MaxPending-len(c.pending), c.cfg.MaxPeers-c.peers)
	c.mu.Unlock()
	type offer struct {
		Offer   webrtc.SessionDescription `json:"offer"`
		OfferID string                    `json:"offer_id"`
	}
	offers := []offer{}
	var ids [][20]byte
	for range n {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		o, err := c.cfg.Transport.Offer(octx)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrOfferCap) && !errors.Is(err, ErrClosed) {
				c.cfg.Log.Warn("webrtc offer", "err", err)
			}
			break
		}
		var id [20]byte
		rand.Read(id[:])
		c.mu.Lock()
		c.pending[id] = &pendingOffer{o: o, expires: time.Now().Add(c.cfg.OfferTTL)}
		c.mu.Unlock()
		ids = append(ids, id)
		offers = append(offers, offer{Offer: o.SDP, OfferID: binString(id[:])})
	}
	msg := map[string]any{
		"action":     "announce",
		"info_hash":  binString(c.cfg.InfoHash[:]),
		"peer_id":    binString(c.cfg.PeerID[:]),
		"numwant":    len(offers),
		"uploaded":   0,
		"downloaded": 0,
		"left":       c.left(),
		"offers":     offers,
	}
	if event != "" {
		msg["event"] = event
	}
	if err := s.send(msg); err != nil {
		c.drop(ids) // never sent: nothing will answer them
		return fmt.Errorf("rtc: announce: %w", err)
	}
	return nil
}

// drop closes the pending offers ids.
func (c *Client) drop(ids [][20]byte) {
	var old []*Offer
	c.mu.Lock()
	for _, id := range ids {
		if p := c.pending[id]; p != nil {
			delete(c.pending, id)
			old = append(old, p.o)
		}
	}
	c.mu.Unlock()
	for _, o := range old {
		o.Close()
	}
}

// stopped tells the tracker we leave, best effort.
func (c *Client) stopped(send func(any) error) {
	send(map[string]any{
		"action":    "announce",
		"event":     "stopped",
		"info_hash": binString(c.cfg.InfoHash[:]),
		"peer_id":   binString(c.cfg.PeerID[:]),
		"numwant":   0,
		"left":      c.left(),
	})
}

// expire closes the offers older than OfferTTL at now; a zero now closes them all.
func (c *Client) expire(now time.Time) {
	var old []*Offer
	c.mu.Lock()
	for id, p := range c.pending {
		if now.IsZero() || now.After(p.expires) {
			delete(c.pending, id)
			old = append(old, p.o)
		}
	}
	c.mu.Unlock()
	// Closing gives the torrent's slot back, which takes c.mu.
	for _, o := range old {
		o.Close()
		c.m.offer(offerExpired)
	}
}

// connect applies a relayed answer to the offer it answers.
func (c *Client) connect(ctx context.Context, m trackerMessage) {
	id, ok := parseBin(m.OfferID)
	if !ok || parseInfoHash(m.InfoHash) != c.cfg.InfoHash {
		return
	}
	c.mu.Lock()
	p := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if p == nil {
		return // expired, or never ours
	}
	release, ok := c.take() // an answered offer becomes one of the torrent's peers
	if !ok {
		p.o.Close()
		c.m.offer(offerFailed)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		nc, err := p.o.Connect(ctx, *m.Answer)
		if err != nil {
			release()
			c.m.offer(offerFailed)
			c.cfg.Log.Debug("webrtc connect", "err", err)
			return
		}
		nc.(*conn).p.addRelease(release)
		c.m.offer(offerAnswered)
		c.m.open(true)
		c.cfg.HandleConn(nc, true)
	}()
}

// answer answers a relayed offer, when there is room for a peer.
func (c *Client) answer(ctx context.Context, send func(any) error, m trackerMessage) {
	from, ok1 := parseBin(m.PeerID)
	offerID, ok2 := parseBin(m.OfferID)
	if !ok1 || !ok2 || parseInfoHash(m.InfoHash) != c.cfg.InfoHash {
		c.m.refuse("bad_offer")
		return
	}
	release, ok := c.take()
	if !ok {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		a, wait, err := c.cfg.Transport.Answer(actx, *m.Offer)
		cancel()
		if err != nil {
			release()
			c.cfg.Log.Debug("webrtc answer", "err", err)
			return
		}
		err = send(map[string]any{
			"action":     "announce",
			"info_hash":  binString(c.cfg.InfoHash[:]),
			"peer_id":    binString(c.cfg.PeerID[:]),
			"to_peer_id": binString(from[:]),
			"offer_id":   binString(offerID[:]),
			"answer":     a,
		})
		nc, werr := wait(withCancelIf(ctx, err))
		if werr != nil {
			release()
			return
		}
		// The slot of the torrent goes with the connection.
		nc.(*conn).p.addRelease(release)
		c.m.open(false)
		c.cfg.HandleConn(nc, false)
	}()
}

// withCancelIf returns an ended context when err is set (the answer was not sent: nothing
// will connect), else ctx.
func withCancelIf(ctx context.Context, err error) context.Context {
	if err == nil {
		return ctx
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	return cctx
}

// binString encodes bytes as the WebTorrent protocol does: one code point 0–255 a byte.
func binString(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// parseBin decodes a 20-byte binary string of code points 0–255.
func parseBin(s string) ([20]byte, bool) {
	var out [20]byte
	i := 0
	for _, r := range s {
		if r > 0xff || i == len(out) {
			return out, false
		}
		out[i] = byte(r)
		i++
	}
	return out, i == len(out)
}

func parseInfoHash(s string) bittorrent.InfoHash {
	b, _ := parseBin(s)
	return bittorrent.InfoHash(b)
}
