package wsrelay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
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
	// Queue bounds the operations (joins, leaves, offers, answers) waiting for Redis
	// (default 4096); more are dropped.
	Queue int
	// MaxMessage bounds an offer's or answer's SDP in bytes (default 64 KiB, the WebSocket
	// message limit); a larger one is dropped.
	MaxMessage int
	// PeerTTL is how long a swarm's hash of peer locations outlives its last announce
	// (default 5 min: wsapi's peer timeout).
	PeerTTL time.Duration
	// Timeout bounds each Redis call (default 250 ms).
	Timeout time.Duration
	// Batch bounds the queued operations the worker sends to Redis together, in one
	// pipeline (default 256).
	Batch int
	// BatchDelay bounds how long the worker, holding fewer than Batch operations, waits
	// for more before it sends them (default 1 ms).
	BatchDelay time.Duration
	// MaxSwarms bounds the swarms whose peer count (Peers) is remembered (default 65,536);
	// past it, one remembered swarm is forgotten for each new one.
	MaxSwarms int
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
	rdb redis.UniversalClient
	opt Options
	ch  string // our channel
	q   chan op
	up  atomic.Bool
	// subscribed: Redis confirmed our channel's subscription, so messages published to it
	// now reach us (pub/sub keeps nothing for a subscriber not yet there).
	subscribed atomic.Bool
	m          *metrics
	stop       chan struct{}
	wg         sync.WaitGroup

	mu   sync.Mutex
	size map[bittorrent.InfoHash]int // peers of a swarm on all instances, as last counted

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
	if opt.Batch == 0 {
		opt.Batch = 256
	}
	if opt.BatchDelay == 0 {
		opt.BatchDelay = time.Millisecond
	}
	if opt.MaxSwarms == 0 {
		opt.MaxSwarms = 1 << 16
	}
	if opt.Queue < 0 || opt.MaxMessage < 0 || opt.PeerTTL < 0 || opt.Timeout < 0 || opt.Batch < 0 || opt.BatchDelay < 0 || opt.MaxSwarms < 0 {
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
		size: make(map[bittorrent.InfoHash]int),
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

// Peers implements wsapi.Relay: the peers of swarm ih on all instances, as Redis counted
// them when a peer of this instance last joined or left the swarm; not known while Redis
// is down.
func (r *Relay) Peers(ih bittorrent.InfoHash) (n int, ok bool) {
	if !r.up.Load() {
		return 0, false
	}
	r.mu.Lock()
	n, ok = r.size[ih]
	r.mu.Unlock()
	return n, ok
}

// counted remembers that swarm ih has n peers on all instances.
func (r *Relay) counted(ih bittorrent.InfoHash, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n == 0 {
		delete(r.size, ih)
		return
	}
	if _, ok := r.size[ih]; !ok && len(r.size) >= r.opt.MaxSwarms {
		for k := range r.size { // map order: an arbitrary swarm
			delete(r.size, k)
			break
		}
	}
	r.size[ih] = n
}

// work runs the queued operations against Redis, a batch at a time.
func (r *Relay) work() {
	defer r.wg.Done()
	batch := make([]op, 0, r.opt.Batch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		batch = batch[:0]
		select {
		case <-r.stop:
			return
		case o := <-r.q:
			batch = append(batch, o)
		}
		wait.Reset(r.opt.BatchDelay)
	fill:
		for len(batch) < r.opt.Batch {
			select {
			case o := <-r.q:
				batch = append(batch, o)
			case <-wait.C:
				break fill
			case <-r.stop:
				return
			}
		}
		wait.Stop() // no stale tick is left behind (Go ≥ 1.23)
		ctx, cancel := context.WithTimeout(context.Background(), r.opt.Timeout)
		err := r.run(ctx, batch)
		cancel()
		r.health(err)
		clear(batch) // the SDPs go to the garbage collector now, not when overwritten
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

// run sends a batch of operations to Redis in at most three round trips, however many
// they are: first every join, leave and answer (in queue order, which keeps a peer's join
// before its leave) with the random picks of every offer; then every offer to the peers
// picked; then, rarely, the removal of peers whose instance is gone.
func (r *Relay) run(ctx context.Context, batch []op) error {
	r.m.ops.Add(float64(len(batch)))
	sizes := make(map[bittorrent.InfoHash]*redis.IntCmd) // swarms joined: HLEN
	left := make([]*redis.Cmd, len(batch))               // leaves: the script's HLEN
	picks := make([]*redis.KeyValueSliceCmd, len(batch))
	pubs := make([]*redis.IntCmd, len(batch))
	_, err := r.pipeline(ctx, func(p redis.Pipeliner) {
		for i := range batch {
			o := &batch[i]
			switch o.kind {
			case opJoin:
				p.HSet(ctx, r.swarmKey(&o.ih), string(o.id[:]), r.opt.Instance)
				sizes[o.ih] = nil
			case opLeave:
				// Only our own entry: the peer may have moved to another instance since.
				left[i] = leaveScript.Eval(ctx, p, []string{r.swarmKey(&o.ih)}, string(o.id[:]), r.opt.Instance)
			case opOffer:
				picks[i] = p.HRandFieldWithValues(ctx, r.swarmKey(&o.ih), r.sample(o))
			case opAnswer:
				pubs[i] = p.SPublish(ctx, channel(r.opt.Prefix, o.instance), encode(o.msg))
			}
		}
		// Once a swarm for all its joins in the batch, after them: its expiry and length.
		for ih := range sizes {
			key := r.swarmKey(&ih)
			p.PExpire(ctx, key, r.opt.PeerTTL)
			sizes[ih] = p.HLen(ctx, key)
		}
	})
	// A failed pipeline fails each of its commands: the results below count each loss.
	for i := range batch {
		o := &batch[i]
		switch {
		case left[i] != nil:
			if n, err := left[i].Int(); err == nil {
				r.counted(o.ih, n)
			}
		case pubs[i] != nil:
			r.published(pubs[i], "answer")
		}
	}
	for ih, c := range sizes {
		if c.Err() == nil {
			r.counted(ih, int(c.Val()))
		}
	}
	if err2 := r.offer(ctx, batch, picks); err == nil {
		err = err2
	}
	return err
}

// pipeline runs fill's commands in one pipeline and counts the round trip.
func (r *Relay) pipeline(ctx context.Context, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	p := r.rdb.Pipeline()
	fill(p)
	if p.Len() == 0 {
		return nil, nil
	}
	r.m.roundTrips.Inc()
	cmds, err := p.Exec(ctx)
	if err != nil {
		err = fmt.Errorf("wsrelay: %d Redis commands: %w", len(cmds), err)
	}
	return cmds, err
}

// published counts the outcome of one SPUBLISH of a message of kind: relayed, or dropped
// because no instance listens on the channel (n == 0) or Redis failed. It reports whether
// an instance received it.
func (r *Relay) published(c *redis.IntCmd, kind string) bool {
	n, err := c.Result()
	switch {
	case err != nil:
		r.m.dropped.WithLabelValues(dropError).Inc()
	case n == 0:
		r.m.dropped.WithLabelValues(dropNoReceiver).Inc()
	default:
		r.m.relayed.WithLabelValues("out", kind).Inc()
		return true
	}
	return false
}

// sample is how many fields of the swarm's hash an offer asks for: enough to find its
// targets among this instance's own peers and the announcer, and the whole hash while it
// has at most maxSample fields, so that every peer of a swarm of that size is as likely a
// target as any other.
func (r *Relay) sample(o *op) int {
	n := 4*len(o.offers) + 16
	if size, ok := r.Peers(o.ih); ok {
		n = max(n, min(size, maxSample))
	}
	return n
}

// maxSample bounds the fields an offer asks Redis for.
const maxSample = 512

// leaveScript deletes a peer's location if the instance ARGV[2] still holds it, and returns
// the swarm's peers left.
var leaveScript = redis.NewScript(`if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end return redis.call('HLEN', KEYS[1])`)

// target is one offer on its way to a peer on another instance.
type target struct {
	op       *op
	offer    int
	peer     string // peer_id
	instance string
	pub      *redis.IntCmd
}

// offer publishes each offer of the batch to a random peer of its swarm held by another
// instance (never the announcer; each peer at most once an announce), in one round trip,
// and forgets the peers whose instance no longer listens.
func (r *Relay) offer(ctx context.Context, batch []op, picks []*redis.KeyValueSliceCmd) error {
	var sends []target
	for i := range batch {
		o := &batch[i]
		if picks[i] == nil {
			continue
		}
		kv, err := picks[i].Result()
		if err != nil {
			r.m.dropped.WithLabelValues(dropError).Add(float64(len(o.offers)))
			continue
		}
		// HRANDFIELD returns the whole hash, in its own order, when it asks for as many
		// fields as there are: shuffle, so that any peer may come first.
		mrand.Shuffle(len(kv), func(a, b int) { kv[a], kv[b] = kv[b], kv[a] })
		next := 0
		for _, e := range kv {
			if next == len(o.offers) {
				break
			}
			if e.Value == r.opt.Instance || e.Key == string(o.id[:]) || len(e.Key) != 20 {
				continue
			}
			sends = append(sends, target{op: o, offer: next, peer: e.Key, instance: e.Value})
			next++
		}
	}
	if len(sends) == 0 {
		return nil
	}
	_, err := r.pipeline(ctx, func(p redis.Pipeliner) {
		for i := range sends {
			s := &sends[i]
			of := &s.op.offers[s.offer]
			m := &wsapi.RelayMessage{InfoHash: s.op.ih, From: s.op.id, OfferID: of.OfferID, Instance: r.opt.Instance, SDP: of.SDP}
			copy(m.To[:], s.peer)
			s.pub = p.SPublish(ctx, channel(r.opt.Prefix, s.instance), encode(m))
		}
	})
	var gone []*target
	for i := range sends {
		if !r.published(sends[i].pub, "offer") && sends[i].pub.Err() == nil {
			gone = append(gone, &sends[i]) // nobody listens there: the instance is gone, and so is its peer
		}
	}
	if len(gone) > 0 && err == nil {
		_, err = r.pipeline(ctx, func(p redis.Pipeliner) {
			for _, g := range gone {
				leaveScript.Eval(ctx, p, []string{r.swarmKey(&g.op.ih)}, g.peer, g.instance)
			}
		})
	}
	return err
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
		r.subscribed.Store(false)
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
			r.subscribed.Store(true)
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
