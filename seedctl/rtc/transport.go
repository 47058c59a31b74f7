package rtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Defaults of Config.
const (
	DefaultMaxPeers       = 200
	DefaultMaxOffers      = 100
	DefaultConnectTimeout = 20 * time.Second
)

var (
	// ErrProcessCap is returned when the process has Config.MaxPeers peers open.
	ErrProcessCap = errors.New("rtc: WebRTC peer limit of the process reached")
	// ErrOfferCap is returned when the process has Config.MaxOffers offers waiting.
	ErrOfferCap = errors.New("rtc: limit of waiting WebRTC offers reached")
	// ErrClosed is returned by a Transport after Close.
	ErrClosed = errors.New("rtc: transport closed")
)

// Config configures a Transport.
type Config struct {
	// STUN lists stun: URLs for server-reflexive candidates; none by default (host
	// candidates only: a public server needs nothing else, and a browser behind NAT reaches
	// it from its own reflexive address).
	STUN []string
	// PortMin and PortMax bound the UDP ports ICE binds (both 0: any), so a firewall can
	// allow them.
	PortMin, PortMax uint16
	// Bind, when valid, is the only local address ICE gathers candidates on. A loopback
	// address is allowed (tests, a local reverse proxy's host).
	Bind netip.Addr
	// MaxPeers bounds the peers of the process at once: connections opening (an answer
	// sent or received) and open (default 200; negative: none). Offers waiting for an
	// answer are not peers: MaxOffers bounds them.
	MaxPeers int
	// MaxOffers bounds the offers of the process waiting for an answer, each a
	// PeerConnection with its UDP sockets (default 100; negative: none). An answered offer
	// becomes a peer when there is room for one, and is closed otherwise.
	MaxOffers int
	// ConnectTimeout bounds the time from an answer (sent or received) to an open data
	// channel (default 20 s).
	ConnectTimeout time.Duration
	// Metrics counts peers and offers; nil counts nothing.
	Metrics *Metrics
}

// ParsePorts parses a UDP port range "min-max" (or one port) for Config.PortMin/PortMax;
// "" is any port.
func ParsePorts(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, fmt.Errorf("rtc: bad UDP port range %q: want MIN-MAX with 1 ≤ MIN ≤ MAX ≤ 65535", s)
	}
	return uint16(l), uint16(h), nil
}

// Transport makes WebRTC peer connections that carry one detached data channel each, and
// holds the WebSocket tracker connections its Clients share. It is safe for concurrent use;
// Close closes everything it opened.
type Transport struct {
	api    *webrtc.API
	cfg    Config
	ice    []webrtc.ICEServer
	slots  chan struct{} // nil: no process cap on peers
	offers chan struct{} // nil: no process cap on waiting offers

	mu      sync.Mutex
	closed  bool
	done    chan struct{} // closed by Close
	peers   map[*peer]struct{}
	sockets map[string][]*socket // by tracker URL
	wg      sync.WaitGroup       // socket goroutines
}

// NewTransport checks cfg and builds the WebRTC stack.
func NewTransport(cfg Config) (*Transport, error) {
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxOffers == 0 {
		cfg.MaxOffers = DefaultMaxOffers
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.SetSCTPMaxMessageSize(maxRecvMessage)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("rtc: UDP port range %d-%d: %w", cfg.PortMin, cfg.PortMax, err)
		}
	}
	if cfg.Bind.IsValid() {
		bind := cfg.Bind.Unmap()
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == bind
		})
		if bind.IsLoopback() {
			se.SetIncludeLoopbackCandidate(true)
		}
	}
	t := &Transport{api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), cfg: cfg,
		done: make(chan struct{}), peers: map[*peer]struct{}{}, sockets: map[string][]*socket{}}
	for _, u := range cfg.STUN {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			return nil, fmt.Errorf("rtc: bad STUN URL %q: want stun:HOST:PORT", u)
		}
		t.ice = append(t.ice, webrtc.ICEServer{URLs: []string{u}})
	}
	if cfg.MaxPeers > 0 {
		t.slots = make(chan struct{}, cfg.MaxPeers)
	}
	if cfg.MaxOffers > 0 {
		t.offers = make(chan struct{}, cfg.MaxOffers)
	}
	return t, nil
}

// Close closes every PeerConnection of t (offers, connections opening, and the connections
// handed out, whose reads and writes then fail) with its UDP sockets, and every tracker
// WebSocket, and waits for t's goroutines. Offer and Answer fail after Close, and the
// Clients running on t return.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	peers := make([]*peer, 0, len(t.peers))
	for p := range t.peers {
		peers = append(peers, p)
	}
	var socks []*socket
	for _, ss := range t.sockets {
		socks = append(socks, ss...)
	}
	clear(t.sockets)
	t.mu.Unlock()
	for _, s := range socks {
		s.cancel()
	}
	for _, p := range peers {
		p.shut()
	}
	t.wg.Wait()
	return nil
}

// acquire takes a slot of sem (nil: no cap; full: err, counted as reason); the returned
// release gives it back.
func (t *Transport) acquire(sem chan struct{}, reason string, err error) (func(), error) {
	if sem != nil {
		select {
		case sem <- struct{}{}:
		default:
			t.cfg.Metrics.refuse(reason)
			return nil, err
		}
	}
	t.cfg.Metrics.peerDelta(1)
	return func() {
		t.cfg.Metrics.peerDelta(-1)
		if sem != nil {
			<-sem
		}
	}, nil
}

// acquirePeer takes a peer slot of the process.
func (t *Transport) acquirePeer() (func(), error) {
	return t.acquire(t.slots, "process_cap", ErrProcessCap)
}

// peer is one PeerConnection until its data channel opens.
type peer struct {
	t      *Transport
	pc     *webrtc.PeerConnection
	opened chan *conn // one, when the data channel is open and detached
	failed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	release  func() // the slots it holds; nil once released
	released bool
	c        *conn // handed out, once open
}

// setRelease swaps the slots p holds for r's, giving the old ones back.
func (p *peer) setRelease(r func()) {
	p.mu.Lock()
	old := p.release
	if p.released {
		p.mu.Unlock()
		r()
		return
	}
	p.release = r
	p.mu.Unlock()
	old()
}

// addRelease makes p hold r's slot too; at once given back when p is gone already.
func (p *peer) addRelease(r func()) {
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		r()
		return
	}
	old := p.release
	p.release = func() { old(); r() }
	p.mu.Unlock()
}

// done gives p's slots back and forgets p, once; its PeerConnection is closed.
func (p *peer) done() {
	p.mu.Lock()
	r := p.release
	first := !p.released
	p.released, p.release = true, nil
	p.mu.Unlock()
	if !first {
		return
	}
	r()
	p.t.mu.Lock()
	delete(p.t.peers, p)
	p.t.mu.Unlock()
}

// shut closes p, and its connection if it was handed out.
func (p *peer) shut() {
	p.mu.Lock()
	c := p.c
	p.mu.Unlock()
	if c != nil {
		c.Close()
		return
	}
	p.close()
}

func (t *Transport) newPeer(release func()) (*peer, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		release()
		return nil, ErrClosed
	}
	pc, err := t.api.NewPeerConnection(webrtc.Configuration{ICEServers: t.ice})
	if err != nil {
		release()
		return nil, fmt.Errorf("rtc: new PeerConnection: %w", err)
	}
	p := &peer{t: t, pc: pc, release: release, opened: make(chan *conn, 1), failed: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		p.close()
		return nil, ErrClosed
	}
	t.peers[p] = struct{}{}
	t.mu.Unlock()
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			p.once.Do(func() { close(p.failed) })
		}
	})
	return p, nil
}

// watch detaches dc when it opens and hands the connection to p.opened.
func (p *peer) watch(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		rw, err := dc.DetachWithDeadline()
		if err != nil {
			p.once.Do(func() { close(p.failed) })
			return
		}
		c := newConn(p, dc, rw)
		p.mu.Lock()
		first := p.c == nil && !p.released
		if first {
			p.c = c
		}
		p.mu.Unlock()
		if !first { // a second channel, or the peer is closed already
			rw.Close()
			return
		}
		p.opened <- c
	})
}

// complete sets d as the local description and waits for ICE gathering to finish, as
// non-trickle peers expect.
func (p *peer) complete(ctx context.Context, d webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(d); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("rtc: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return webrtc.SessionDescription{}, fmt.Errorf("rtc: gather ICE candidates: %w", ctx.Err())
	}
	return *p.pc.LocalDescription(), nil
}

// wait returns the open connection, or an error when the PeerConnection fails, ctx ends or
// ConnectTimeout passes; then the PeerConnection is closed.
func (p *peer) wait(ctx context.Context) (net.Conn, error) {
	timer := time.NewTimer(p.t.cfg.ConnectTimeout)
	defer timer.Stop()
	var err error
	select {
	case c := <-p.opened:
		return c, nil
	case <-p.failed:
		err = errors.New("rtc: connection failed")
	case <-timer.C:
		err = fmt.Errorf("rtc: no data channel within %v", p.t.cfg.ConnectTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.close()
	return nil, err
}

// close closes a peer whose connection was not handed out.
func (p *peer) close() {
	p.pc.Close()
	select {
	case c := <-p.opened:
		c.Close()
	default:
	}
	p.done()
}

// Offer is a PeerConnection we offered, waiting for an answer.
type Offer struct {
	p *peer
	// SDP is the complete offer to send.
	SDP webrtc.SessionDescription
}

// Offer makes a PeerConnection with a data channel and returns its complete offer. The
// caller must Connect or Close it. It holds an offer slot (Config.MaxOffers), not a peer
// slot, until it is answered.
func (t *Transport) Offer(ctx context.Context) (*Offer, error) {
	release, err := t.acquire(t.offers, "offer_cap", ErrOfferCap)
	if err != nil {
		return nil, err
	}
	p, err := t.newPeer(release)
	if err != nil {
		return nil, err
	}
	dc, err := p.pc.CreateDataChannel("webtorrent", nil)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("rtc: create data channel: %w", err)
	}
	p.watch(dc)
	o, err := p.pc.CreateOffer(nil)
	if err == nil {
		o, err = p.complete(ctx, o)
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("rtc: offer: %w", err)
	}
	return &Offer{p: p, SDP: o}, nil
}

// Connect applies the peer's answer and waits for the data channel; the connection is
// the caller's to close. The offer's slot becomes a peer slot: with Config.MaxPeers peers
// open it fails with ErrProcessCap. On error the PeerConnection is closed.
func (o *Offer) Connect(ctx context.Context, answer webrtc.SessionDescription) (net.Conn, error) {
	if answer.Type != webrtc.SDPTypeAnswer {
		o.Close()
		return nil, fmt.Errorf("rtc: answer has type %q", answer.Type)
	}
	release, err := o.p.t.acquirePeer()
	if err != nil {
		o.Close()
		return nil, err
	}
	o.p.setRelease(release)
	if err := o.p.pc.SetRemoteDescription(answer); err != nil {
		o.Close()
		return nil, fmt.Errorf("rtc: set answer: %w", err)
	}
	return o.p.wait(ctx)
}

// Close closes an offer that will not be answered (expired, or its client stopped).
func (o *Offer) Close() { o.p.close() }

// Answer makes a PeerConnection for a peer's offer and returns the complete answer to send
// back and a function that waits for the data channel (the connection is the caller's to
// close; wait must be called once, and closes the PeerConnection when it fails).
func (t *Transport) Answer(ctx context.Context, offer webrtc.SessionDescription) (webrtc.SessionDescription, func(context.Context) (net.Conn, error), error) {
	var none webrtc.SessionDescription
	if offer.Type != webrtc.SDPTypeOffer {
		t.cfg.Metrics.refuse("bad_offer")
		return none, nil, fmt.Errorf("rtc: offer has type %q", offer.Type)
	}
	release, err := t.acquirePeer()
	if err != nil {
		return none, nil, err
	}
	p, err := t.newPeer(release)
	if err != nil {
		return none, nil, err
	}
	p.pc.OnDataChannel(p.watch)
	a, err := func() (webrtc.SessionDescription, error) {
		if err := p.pc.SetRemoteDescription(offer); err != nil {
			t.cfg.Metrics.refuse("bad_offer")
			return none, fmt.Errorf("rtc: set offer: %w", err)
		}
		a, err := p.pc.CreateAnswer(nil)
		if err != nil {
			return none, fmt.Errorf("rtc: answer: %w", err)
		}
		return p.complete(ctx, a)
	}()
	if err != nil {
		p.close()
		return none, nil, err
	}
	return a, p.wait, nil
}
