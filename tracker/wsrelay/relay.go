package wsrelay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

// Options configures a Relay. The zero value of a field means its default.
type Options struct {
	// Prefix starts every key and channel (default "webswarm:", as the store's).
	Prefix string
	// Instance names this instance (default: 16 random hex digits).
	Instance string
	// Queue bounds the messages waiting for Redis (default 4096); more are dropped.
	Queue int
	// MaxMessage bounds an offer's or answer's SDP in bytes (default 64 KiB, the WebSocket
	// message limit); a larger one is dropped.
	MaxMessage int
	// PeerTTL is how long a swarm's hash of peer locations outlives its last announce
	// (default 5 min: wsapi's peer timeout).
	PeerTTL time.Duration
	// Timeout bounds each Redis call (default 250 ms).
	Timeout time.Duration
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger receives the outage and recovery lines (default slog.Default()).
	Logger *slog.Logger
}

// Drop reasons, the label values of webswarm_tracker_ws_relay_dropped_total.
const (
	dropQueueFull  = "queue_full"  // Options.Queue
	dropDown       = "down"        // Redis unreachable: the last call failed
	dropTooLarge   = "too_large"   // Options.MaxMessage
	dropNoReceiver = "no_receiver" // the target's instance is gone
	dropBad        = "bad_message" // a message on our channel we cannot read
	dropError      = "error"       // a Redis call failed
)

type opKind uint8

const (
	opJoin opKind = iota
	opLeave
	opOffer
	opAnswer
)

// op is one piece of work for the worker.
type op struct {
	kind     opKind
	ih       bittorrent.InfoHash
	id       bittorrent.PeerID
	instance string              // opAnswer: where it goes
	offers   []wsapi.RelayOffer  // opOffer (SDP copied)
	msg      *wsapi.RelayMessage // opAnswer (SDP copied)
}

// Relay is a wsapi.Relay over Redis pub/sub. Close stops it.
type Relay struct {
	rdb  redis.UniversalClient
	opt  Options
	ch   string // our channel
	q    chan op
	up   atomic.Bool
	m    *metrics
	stop chan struct{}
	wg   sync.WaitGroup

	startOnce sync.Once
	closeOnce sync.Once
}

var _ wsapi.Relay = (*Relay)(nil)

// New returns a Relay using rdb (which the caller owns and closes after the Relay). It does
// not connect: Start does, in the background.
func New(rdb redis.UniversalClient, opt Options) (*Relay, error) {
	if opt.Prefix == "" {
		opt.Prefix = "webswarm:"
	}
	if opt.Instance == "" {
		var b [8]byte
		rand.Read(b[:])
		opt.Instance = hex.EncodeToString(b[:])
	}
	if len(opt.Instance) > 255 {
		return nil, fmt.Errorf("wsrelay: instance name longer than 255 bytes")
	}
	if opt.Queue == 0 {
		opt.Queue = 4096
	}
	if opt.MaxMessage == 0 {
		opt.MaxMessage = 64 << 10
	}
	if opt.PeerTTL == 0 {
		opt.PeerTTL = 5 * time.Minute
	}
	if opt.Timeout == 0 {
		opt.Timeout = 250 * time.Millisecond
	}
	if opt.Queue < 0 || opt.MaxMessage < 0 || opt.PeerTTL < 0 || opt.Timeout < 0 {
		return nil, fmt.Errorf("wsrelay: negative limit")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	r := &Relay{
		rdb:  rdb,
		opt:  opt,
		ch:   channel(opt.Prefix, opt.Instance),
		q:    make(chan op, opt.Queue),
		stop: make(chan struct{}),
	}
	r.up.Store(true) // until a call says otherwise: the first offers are tried
	var err error
	if r.m, err = newMetrics(opt.Registerer); err != nil {
		return nil, err
	}
	return r, nil
}

// Instance returns this instance's name.
func (r *Relay) Instance() string { return r.opt.Instance }

func channel(prefix, instance string) string { return prefix + "wsrelay:{" + instance + "}" }

func (r *Relay) swarmKey(ih *bittorrent.InfoHash) string {
	return r.opt.Prefix + "ws:{" + hex.EncodeToString(ih[:]) + "}"
}

// Start subscribes to this instance's channel and starts the worker; messages for peers
// here go to deliver.
func (r *Relay) Start(deliver func(*wsapi.RelayMessage)) {
	r.startOnce.Do(func() {
		r.wg.Add(2)
		go r.work()
		go r.subscribe(deliver)
	})
}

// Close stops the worker and the subscriber and waits for them; queued messages are
// dropped.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
	return nil
}

func (r *Relay) enqueue(o op) {
	select {
	case r.q <- o:
	default:
		r.m.dropped.WithLabelValues(dropQueueFull).Inc()
	}
}

// Join implements wsapi.Relay.
func (r *Relay) Join(ih bittorrent.InfoHash, id bittorrent.PeerID) {
	r.enqueue(op{kind: opJoin, ih: ih, id: id})
}

// Leave implements wsapi.Relay.
func (r *Relay) Leave(ih bittorrent.InfoHash, id bittorrent.PeerID) {
	r.enqueue(op{kind: opLeave, ih: ih, id: id})
}

// Offer implements wsapi.Relay.
func (r *Relay) Offer(ih bittorrent.InfoHash, from bittorrent.PeerID, offers []wsapi.RelayOffer) {
	if !r.up.Load() {
		r.m.dropped.WithLabelValues(dropDown).Add(float64(len(offers)))
		return
	}
	cp := make([]wsapi.RelayOffer, 0, len(offers))
	for _, o := range offers {
		if len(o.SDP) > r.opt.MaxMessage {
			r.m.dropped.WithLabelValues(dropTooLarge).Inc()
			continue
		}
		cp = append(cp, wsapi.RelayOffer{OfferID: o.OfferID, SDP: append([]byte(nil), o.SDP...)})
	}
	if len(cp) > 0 {
		r.enqueue(op{kind: opOffer, ih: ih, id: from, offers: cp})
	}
}

// Answer implements wsapi.Relay.
func (r *Relay) Answer(instance string, m *wsapi.RelayMessage) {
	switch {
	case !r.up.Load():
		r.m.dropped.WithLabelValues(dropDown).Inc()
		return
	case len(m.SDP) > r.opt.MaxMessage:
		r.m.dropped.WithLabelValues(dropTooLarge).Inc()
		return
	}
	cp := *m
	cp.SDP = append([]byte(nil), m.SDP...)
	r.enqueue(op{kind: opAnswer, instance: instance, msg: &cp})
}

// work runs the queued operations against Redis, one at a time.
func (r *Relay) work() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case o := <-r.q:
			ctx, cancel := context.WithTimeout(context.Background(), r.opt.Timeout)
			err := r.do(ctx, &o)
			cancel()
			r.health(err)
		}
	}
}

// health notes the outcome of a Redis call: the first failure after success is logged,
// and so is the first success after failure.
func (r *Relay) health(err error) {
	if err == nil {
		if !r.up.Swap(true) {
			r.m.up.Set(1)
			r.opt.Logger.Info("WebSocket relay through Redis works again: browsers meet across instances")
		}
		return
	}
	if r.up.Swap(false) {
		r.m.up.Set(0)
		r.opt.Logger.Error("WEBSOCKET RELAY DOWN: Redis failed, browsers meet only peers on this instance until it answers", "err", err)
	}
}

func (r *Relay) do(ctx context.Context, o *op) error {
	switch o.kind {
	case opJoin:
		key := r.swarmKey(&o.ih)
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, string(o.id[:]), r.opt.Instance)
			p.PExpire(ctx, key, r.opt.PeerTTL)
			return nil
		})
		return err
	case opLeave:
		// Only our own entry: the peer may have moved to another instance since.
		key := r.swarmKey(&o.ih)
		return leaveScript.Run(ctx, r.rdb, []string{key}, string(o.id[:]), r.opt.Instance).Err()
	case opOffer:
		return r.offer(ctx, o)
	case opAnswer:
		n, err := r.rdb.SPublish(ctx, channel(r.opt.Prefix, o.instance), encode(o.msg)).Result()
		if err != nil {
			r.m.dropped.WithLabelValues(dropError).Inc()
			return err
		}
		if n == 0 {
			r.m.dropped.WithLabelValues(dropNoReceiver).Inc()
			return nil
		}
		r.m.relayed.WithLabelValues("out", "answer").Inc()
	}
	return nil
}

// leaveScript deletes a peer's location if this instance still holds it.
var leaveScript = redis.NewScript(`if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`)

// offer picks peers of the swarm on other instances and publishes an offer to each.
func (r *Relay) offer(ctx context.Context, o *op) error {
	key := r.swarmKey(&o.ih)
	// Ask for more than needed: some fields are ours or the announcer's.
	kv, err := r.rdb.HRandFieldWithValues(ctx, key, 2*len(o.offers)+8).Result()
	if err != nil {
		r.m.dropped.WithLabelValues(dropError).Add(float64(len(o.offers)))
		return err
	}
	sent := 0
	for _, e := range kv {
		if sent == len(o.offers) {
			break
		}
		if e.Value == r.opt.Instance || e.Key == string(o.id[:]) || len(e.Key) != 20 {
			continue
		}
		of := &o.offers[sent]
		m := &wsapi.RelayMessage{InfoHash: o.ih, From: o.id, OfferID: of.OfferID, Instance: r.opt.Instance, SDP: of.SDP}
		copy(m.To[:], e.Key)
		n, err := r.rdb.SPublish(ctx, channel(r.opt.Prefix, e.Value), encode(m)).Result()
		if err != nil {
			r.m.dropped.WithLabelValues(dropError).Add(float64(len(o.offers) - sent))
			return err
		}
		if n == 0 { // nobody listens there: the instance is gone, and so is its peer
			r.m.dropped.WithLabelValues(dropNoReceiver).Inc()
			leaveScript.Run(ctx, r.rdb, []string{key}, e.Key, e.Value)
			continue
		}
		r.m.relayed.WithLabelValues("out", "offer").Inc()
		sent++
	}
	return nil
}

// subscribe receives the messages for this instance's peers until Close, resubscribing
// with a backoff after a failure.
func (r *Relay) subscribe(deliver func(*wsapi.RelayMessage)) {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var ps *redis.PubSub
	go func() { // Close ends a blocked receive: the client's reads do not watch ctx
		<-r.stop
		mu.Lock()
		cancel()
		if ps != nil {
			ps.Close()
		}
		mu.Unlock()
	}()
	backoff := 100 * time.Millisecond
	for {
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			return
		}
		ps = r.rdb.SSubscribe(ctx, r.ch)
		cur := ps
		mu.Unlock()
		err := r.receive(ctx, cur, deliver, &backoff)
		cur.Close()
		if ctx.Err() != nil {
			return
		}
		r.health(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *Relay) receive(ctx context.Context, ps *redis.PubSub, deliver func(*wsapi.RelayMessage), backoff *time.Duration) error {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		switch msg := msg.(type) {
		case *redis.Subscription:
			*backoff = 100 * time.Millisecond
		case *redis.Message:
			m, err := decode([]byte(msg.Payload), r.opt.MaxMessage)
			if err != nil {
				r.m.dropped.WithLabelValues(dropBad).Inc()
				continue
			}
			kind := "offer"
			if m.Answer {
				kind = "answer"
			}
			r.m.relayed.WithLabelValues("in", kind).Inc()
			deliver(m)
		}
	}
}

// A message on the wire: kind (1 byte: 0 offer, 1 answer), info_hash, from, to, offer_id
// (20 bytes each), the sending instance's name (1 length byte), then the SDP object.
const header = 1 + 4*20 + 1

func encode(m *wsapi.RelayMessage) string {
	b := make([]byte, 0, header+len(m.Instance)+len(m.SDP))
	var kind byte
	if m.Answer {
		kind = 1
	}
	b = append(b, kind)
	b = append(b, m.InfoHash[:]...)
	b = append(b, m.From[:]...)
	b = append(b, m.To[:]...)
	b = append(b, m.OfferID[:]...)
	b = append(b, byte(len(m.Instance)))
	b = append(b, m.Instance...)
	b = append(b, m.SDP...)
	return string(b)
}

var errBadMessage = errors.New("wsrelay: malformed message")

func decode(b []byte, maxSDP int) (*wsapi.RelayMessage, error) {
	if len(b) < header || b[0] > 1 {
		return nil, errBadMessage
	}
	m := &wsapi.RelayMessage{Answer: b[0] == 1}
	p := b[1:]
	p = p[copy(m.InfoHash[:], p):]
	p = p[copy(m.From[:], p):]
	p = p[copy(m.To[:], p):]
	p = p[copy(m.OfferID[:], p):]
	n := int(p[0])
	p = p[1:]
	if len(p) < n {
		return nil, errBadMessage
	}
	m.Instance, m.SDP = string(p[:n]), p[n:]
	if len(m.SDP) > maxSDP || len(m.SDP) < 2 || m.SDP[0] != '{' {
		return nil, errBadMessage
	}
	return m, nil
}
