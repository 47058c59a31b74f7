package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

//go:embed announce.lua
var scriptSrc string

// ErrUnavailable wraps every failure to reach the store or to get an answer from it in time:
// the announce may be retried later, nothing was refused. It is swarm.ErrUnavailable.
var ErrUnavailable = swarm.ErrUnavailable

// Refusal codes the script returns in the first element of its reply.
var refusals = [...]error{
	1: swarm.ErrTooManyTorrents,
	2: swarm.ErrTooManyPeers,
	3: swarm.ErrTrackerPeersFull,
	4: swarm.ErrTooManyPeersFromIP,
	5: swarm.ErrPeerIDTaken,
	6: swarm.ErrIPChanged,
}

// Defaults of Options.
const (
	DefaultPrefix  = "webswarm:"
	DefaultTimeout = 250 * time.Millisecond
	// indexShards is how many sets the torrent index is split into (by the info-hash's first
	// hex digit), so that no one key holds every torrent.
	indexShards = 16
	// swarmKeyCount is how many of the script's KEYS are the swarm's own (its hash tag):
	// the meta hash and the four peer hashes.
	swarmKeyCount = 5
	// sweepBatch bounds the peers one expiry call examines in one swarm.
	sweepBatch = 1000
)

// Options are the Redis-specific settings of a Store.
type Options struct {
	// Prefix starts every key (default DefaultPrefix): several trackers can share one Redis
	// with different prefixes.
	Prefix string
	// Timeout bounds each call to Redis (default DefaultTimeout).
	Timeout time.Duration
	// Registerer receives the store's metrics (none if nil).
	Registerer prometheus.Registerer
}

// Store is a swarm.Store kept in Redis. Any number of Stores (in any number of processes)
// with the same prefix share the same swarms.
type Store struct {
	rdb     redis.UniversalClient
	cfg     swarm.Config
	opt     Options
	script  *redis.Script
	secret  atomic.Pointer[[]byte] // the shared key-hash secret, read from Redis once
	timeout int64                  // PeerTimeout in seconds
	gKey    string                 // totals hash
	ipKey   string                 // peers per IP
	deadKey string                 // torrents that have completions only
	m       *metrics
	// cluster: rdb is a Redis Cluster client. The script then gets only the swarm's keys
	// (one slot), the index is updated in a second call when a torrent is created or
	// dropped, Totals are summed over the swarms, and the store-wide limits (torrents, total
	// peers, peers per IP) are not enforced.
	cluster bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ swarm.Store = (*Store)(nil)

// New returns a Store on rdb and starts its expiry sweep; Close stops it (and does not close
// rdb). A store that cannot be reached is not an error here: calls fail with ErrUnavailable
// until it answers.
func New(ctx context.Context, rdb redis.UniversalClient, cfg swarm.Config, opt Options) (*Store, error) {
	if cfg.PeerTimeout == 0 {
		cfg.PeerTimeout = 45 * time.Minute
	}
	if cfg.PeerTimeout < time.Second || cfg.PeerTimeout > swarm.MaxPeerTimeout {
		return nil, fmt.Errorf("redisstore: peer timeout %v outside 1s..%v", cfg.PeerTimeout, swarm.MaxPeerTimeout)
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = min(cfg.PeerTimeout/4, time.Minute)
	}
	if cfg.MaxTorrents < 0 || cfg.MaxPeers < 0 || cfg.MaxTotalPeers < 0 || cfg.MaxPeersPerIP < 0 {
		return nil, errors.New("redisstore: negative limit")
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = 1 << 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	var err error
	s := &Store{
		rdb:     rdb,
		cfg:     cfg,
		opt:     opt,
		script:  redis.NewScript(scriptSrc),
		timeout: int64(cfg.PeerTimeout / time.Second),
		gKey:    opt.Prefix + "totals",
		ipKey:   opt.Prefix + "ip",
		deadKey: opt.Prefix + "dead",
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	_, s.cluster = rdb.(*redis.ClusterClient)
	if s.m, err = newMetrics(opt.Registerer); err != nil {
		return nil, err
	}
	_, _ = s.loadSecret(ctx) // retried by the first announce with a key if Redis is down
	go s.run()
	return s, nil
}

// loadSecret reads the secret that key hashes are keyed with, creating it if no instance
// has: every instance must hash a peer's key alike, or a peer could not move between them.
func (s *Store) loadSecret(ctx context.Context) ([]byte, error) {
	if b := s.secret.Load(); b != nil {
		return *b, nil
	}
	var fresh [32]byte
	_, _ = rand.Read(fresh[:]) // never fails (crypto/rand)
	k := s.opt.Prefix + "secret"
	if err := s.rdb.SetNX(ctx, k, fresh[:], 0).Err(); err != nil {
		return nil, s.m.fail("secret", err)
	}
	b, err := s.rdb.Get(ctx, k).Bytes()
	if err != nil {
		return nil, s.m.fail("secret", err)
	}
	s.secret.Store(&b)
	return b, nil
}

func (s *Store) run() {
	defer close(s.done)
	if s.cfg.GCInterval < 0 {
		<-s.stop
		return
	}
	tick := time.NewTicker(s.cfg.GCInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.Expire()
		}
	}
}

// Close stops the expiry sweep.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opt.Timeout)
}

// readCtx bounds one round trip of a bulk read (Walk, RangeTorrents, a cluster's Totals):
// each moves thousands of records and serves pages and metrics, not announces, so it gets
// ten times an announce's budget rather than failing half-way on a busy Redis.
func (s *Store) readCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), bulkTimeout(s.opt.Timeout))
}

// keys returns the script's KEYS for a swarm (hex info-hash h).
func (s *Store) keys(h string) []string {
	b := s.opt.Prefix + "{" + h + "}:"
	k := []string{b + "m", b + "4s", b + "4l", b + "6s", b + "6l",
		s.gKey, s.ipKey, s.indexKey(h), s.deadKey}
	if s.cluster {
		return k[:swarmKeyCount]
	}
	return k
}

// reindex applies what the script reports of a torrent's birth (1) or death (-1) to the
// index, on a cluster, where the script cannot reach the index's slot.
func (s *Store) reindex(ctx context.Context, h string, indexed int64) {
	var err error
	switch indexed {
	case 1:
		err = s.rdb.SAdd(ctx, s.indexKey(h), h).Err()
	case -1:
		err = s.rdb.SRem(ctx, s.indexKey(h), h).Err()
	}
	if err != nil {
		_ = s.m.fail("index", err)
	}
}

func (s *Store) indexKey(h string) string { return s.opt.Prefix + "idx:" + h[:1] }

// args returns the script's leading ARGV for op on swarm h.
func (s *Store) args(op, h string, extra ...any) []any {
	keepDead := "0"
	if s.cfg.KeepDead {
		keepDead = "1"
	}
	maxT, maxTotal, maxIP := s.cfg.MaxTorrents, s.cfg.MaxTotalPeers, s.cfg.MaxPeersPerIP
	if s.cluster {
		maxT, maxTotal, maxIP = 0, 0, 0
	}
	a := []any{op, s.opt.Prefix, h, s.cfg.Now().Unix(), s.timeout, maxT, s.cfg.MaxPeers, maxTotal, maxIP, keepDead}
	return append(a, extra...)
}

// keyHash is a keyed hash of a client's key (HMAC-SHA-256 truncated to 64 bits), keyed with
// the secret the instances share: it cannot be searched offline.
func keyHash(secret, key []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(key)
	return string(m.Sum(nil)[:8])
}

// field is a peer's name inside its swarm: its family ('4' or '6') and peer ID. The two
// families are separate peers, as in the memory store.
func field(id *bittorrent.PeerID, addr netip.Addr) string {
	fam := "6"
	if addr.Is4() {
		fam = "4"
	}
	return fam + string(id[:])
}

func compact(a netip.Addr, port uint16) string {
	var buf [18]byte
	var b []byte
	if a.Is4() {
		v := a.As4()
		b = append(buf[:0], v[:]...)
	} else {
		v := a.As16()
		b = append(buf[:0], v[:]...)
	}
	return string(append(b, byte(port>>8), byte(port)))
}

// Announce implements swarm.Store in one round trip.
func (s *Store) Announce(a *swarm.Announce, out *swarm.PeerList) (swarm.Result, error) {
	addr := a.Addr.Addr().Unmap()
	h := hex.EncodeToString(a.InfoHash[:])
	ctx, cancel := s.ctx()
	defer cancel()
	key := ""
	if len(a.Key) > 0 {
		secret, err := s.loadSecret(ctx)
		if err != nil {
			return swarm.Result{}, err
		}
		key = keyHash(secret, a.Key)
	}
	seeder, hidden := "0", "0"
	if a.Left == 0 {
		seeder = "1"
	}
	if a.Hidden {
		hidden = "1"
	}
	withIDs := "0"
	if out.Format != swarm.Compact {
		withIDs = "1"
	}
	reply, err := s.script.Run(ctx, s.rdb, s.keys(h), s.args("a", h,
		field(&a.PeerID, addr), compact(addr, a.Addr.Port()), key, seeder, int(a.Event), a.NumWant, hidden,
		mrand.Uint32(), withIDs)...).Slice()
	if err != nil {
		return swarm.Result{}, s.m.fail("announce", err)
	}
	if len(reply) < 6 {
		return swarm.Result{}, s.m.fail("announce", fmt.Errorf("short reply %v", reply))
	}
	s.m.ok()
	if s.cluster {
		s.reindex(ctx, h, asInt(reply[5]))
	}
	var res swarm.Result
	res.Complete = uint32(asInt(reply[1]))
	res.Incomplete = uint32(asInt(reply[2]))
	res.Downloaded = uint32(asInt(reply[3]))
	res.Hidden = asInt(reply[4]) == 1
	if code := asInt(reply[0]); code != 0 {
		if code < 0 || int(code) >= len(refusals) || refusals[code] == nil {
			return res, s.m.fail("announce", fmt.Errorf("unknown reply code %d", code))
		}
		return res, refusals[code]
	}
	if len(reply) == 10 {
		recs4, _ := reply[6].(string)
		recs6, _ := reply[7].(string)
		ids4, _ := reply[8].(string)
		ids6, _ := reply[9].(string)
		out.V4 = appendPeers(out.V4, recs4, ids4, 6)
		out.V6 = appendPeers(out.V6, recs6, ids6, 18)
	}
	return res, nil
}

// appendPeers appends to dst the compact addresses (n bytes each) of the records recs holds
// one after another (see announce.lua), each followed by its peer ID from ids if ids is not
// empty.
func appendPeers(dst []byte, recs, ids string, n int) []byte {
	const idLen = len(bittorrent.PeerID{})
	for len(recs) >= n+5 {
		size := n + 5
		if recs[n+4]&8 != 0 { // keyed: the key hash follows
			size += 8
		}
		if len(recs) < size {
			break
		}
		dst = append(dst, recs[:n]...)
		recs = recs[size:]
		if ids != "" {
			if len(ids) < idLen {
				break
			}
			dst = append(dst, ids[:idLen]...)
			ids = ids[idLen:]
		}
	}
	return dst
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// Reveal implements swarm.Store.
func (s *Store) Reveal(ih bittorrent.InfoHash, id bittorrent.PeerID, addrPort netip.AddrPort) {
	addr := addrPort.Addr().Unmap()
	h := hex.EncodeToString(ih[:])
	ctx, cancel := s.ctx()
	defer cancel()
	// A failed reveal leaves the peer hidden until it announces again: nothing to report.
	if err := s.script.Run(ctx, s.rdb, s.keys(h), s.args("r", h, field(&id, addr), compact(addr, addrPort.Port()))...).Err(); err != nil {
		_ = s.m.fail("reveal", err)
	}
}

// Scrape implements swarm.Store.
func (s *Store) Scrape(ih bittorrent.InfoHash) (swarm.Counts, bool) {
	h := hex.EncodeToString(ih[:])
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := s.rdb.HMGet(ctx, s.keys(h)[0], metaFields[:]...).Result()
	if err != nil {
		_ = s.m.fail("scrape", err)
		return swarm.Counts{}, false
	}
	m, ok := readMeta(v)
	if !ok {
		return swarm.Counts{}, false
	}
	return swarm.Counts{Complete: uint32(m.s4 + m.s6), Incomplete: uint32(m.l4 + m.l6), Downloaded: uint32(m.d)}, true
}

// rangeBatches calls fn with the torrents' hex info-hashes, one SSCAN batch (about 256) at
// a time, until fn returns false: the index is read shard by shard (bounded work a call, no
// KEYS), and each batch can be read in one pipelined round trip.
func (s *Store) rangeBatches(fn func(hs []string) bool) {
	for i := range indexShards {
		k := s.indexKey(strconv.FormatInt(int64(i), 16))
		var cursor uint64
		for {
			ctx, cancel := s.readCtx()
			hs, next, err := s.rdb.SScan(ctx, k, cursor, "", 256).Result()
			cancel()
			if err != nil {
				_ = s.m.fail("walk", err)
				return
			}
			if len(hs) > 0 && !fn(hs) {
				return
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
}

// rangeIndex calls fn with every torrent's hex info-hash until fn returns false.
func (s *Store) rangeIndex(fn func(h string) bool) {
	s.rangeBatches(func(hs []string) bool {
		for _, h := range hs {
			if !fn(h) {
				return false
			}
		}
		return true
	})
}

// rangeMeta calls fn with every torrent's counts, reading a batch of torrents' meta hashes
// in one pipelined round trip (on a cluster, one a master); torrents dropped since the index
// was read are left out.
func (s *Store) rangeMeta(what string, fn func(h string, m meta) bool) {
	s.rangeBatches(func(hs []string) bool {
		more := true
		s.metaBatch(what, hs, func(i int, m meta) bool {
			more = fn(hs[i], m)
			return more
		}, func() { more = false })
		return more
	})
}

// metaBatch reads the counts of the torrents hs in one pipelined round trip and calls fn
// with each that exists (its index in hs) until fn returns false; failed is called if the
// read failed.
func (s *Store) metaBatch(what string, hs []string, fn func(i int, m meta) bool, failed func()) {
	ctx, cancel := s.readCtx()
	defer cancel()
	cmds := make([]*redis.SliceCmd, len(hs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hs {
			cmds[i] = p.HMGet(ctx, s.keys(h)[0], metaFields[:]...)
		}
		return nil
	})
	if err != nil {
		_ = s.m.fail(what, err)
		failed()
		return
	}
	for i := range hs {
		if m, ok := readMeta(cmds[i].Val()); ok && !fn(i, m) {
			return
		}
	}
}

func parseIH(h string) (bittorrent.InfoHash, bool) {
	var ih bittorrent.InfoHash
	n, err := hex.Decode(ih[:], []byte(h))
	return ih, err == nil && n == len(ih)
}

// RangeTorrents implements swarm.Store.
func (s *Store) RangeTorrents(fn func(ih bittorrent.InfoHash, c swarm.Counts) bool) {
	s.rangeMeta("range", func(h string, m meta) bool {
		ih, ok := parseIH(h)
		if !ok {
			return true
		}
		return fn(ih, swarm.Counts{Complete: uint32(m.s4 + m.s6), Incomplete: uint32(m.l4 + m.l6), Downloaded: uint32(m.d)})
	})
}

// Walk implements swarm.Store. A batch of torrents (about 256) has its counts read in one
// pipelined round trip, then its swarms are read whole (the script's op "w", atomic a swarm)
// in pipelined round trips of about walkPeers peers, so the tracker holds no more than that
// many records however many peers the store has.
func (s *Store) Walk(fn func(ih bittorrent.InfoHash, downloaded uint32, peers []swarm.PeerRecord) bool) {
	ctx, cancel := s.readCtx()
	err := s.script.Load(ctx, s.rdb).Err()
	cancel()
	if err != nil {
		_ = s.m.fail("walk", err)
		return
	}
	var buf []swarm.PeerRecord
	s.rangeBatches(func(hs []string) bool {
		sizes, ok := s.swarmSizes(hs)
		if !ok {
			return false
		}
		for start := 0; start < len(hs); {
			end, n := start, 0
			for end < len(hs) && (end == start || n+sizes[end] <= walkPeers) {
				n += sizes[end]
				end++
			}
			ctx, cancel := s.readCtx()
			cmds := make([]*redis.Cmd, end-start)
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, h := range hs[start:end] {
					cmds[i] = p.EvalSha(ctx, s.script.Hash(), s.keys(h), s.args("w", h)...)
				}
				return nil
			})
			cancel()
			if err != nil {
				_ = s.m.fail("walk", err)
				return false
			}
			for i, h := range hs[start:end] {
				ih, ok := parseIH(h)
				if !ok {
					continue
				}
				var d uint32
				if d, buf, ok = decodeSwarm(cmds[i].Val(), buf[:0]); ok && !fn(ih, d, buf) {
					return false
				}
			}
			start = end
		}
		return true
	})
}

// walkPeers is about how many peers one of Walk's round trips reads.
const walkPeers = 2048

// swarmSizes returns the peers of each torrent of hs (0 for one dropped since the index was
// read), in one pipelined round trip.
func (s *Store) swarmSizes(hs []string) ([]int, bool) {
	sizes := make([]int, len(hs))
	ok := true
	s.metaBatch("walk", hs, func(i int, m meta) bool {
		sizes[i] = int(m.s4 + m.l4 + m.s6 + m.l6)
		return true
	}, func() { ok = false })
	return sizes, ok
}

// decodeSwarm appends to peers the records of a reply of the script's op "w" and returns the
// torrent's completions; false if the torrent does not exist.
func decodeSwarm(v any, peers []swarm.PeerRecord) (uint32, []swarm.PeerRecord, bool) {
	r, _ := v.([]any)
	if len(r) != 5 {
		return 0, peers, false
	}
	d := asInt(r[0])
	for i, x := range r[1:] {
		// The peer hashes are 4s, 4l, 6s, 6l.
		kv, _ := x.([]any)
		for j := 0; j+1 < len(kv); j += 2 {
			id, _ := kv[j].(string)
			rec, _ := kv[j+1].(string)
			if p, ok := decodeRecord(id, rec, i >= 2, i%2 == 0); ok {
				peers = append(peers, p)
			}
		}
	}
	return uint32(d), peers, true
}

// Peers implements swarm.Store: one script call reads the torrent whole.
func (s *Store) Peers(ih bittorrent.InfoHash, fn func(downloaded uint32, peers []swarm.PeerRecord)) bool {
	ctx, cancel := s.readCtx()
	defer cancel()
	h := hex.EncodeToString(ih[:])
	v, err := s.script.Run(ctx, s.rdb, s.keys(h), s.args("w", h)...).Result()
	if err != nil {
		_ = s.m.fail("walk", err)
		return false
	}
	d, peers, ok := decodeSwarm(v, nil)
	if !ok {
		return false
	}
	fn(d, peers)
	return true
}

// CountCompletion counts one completed download of the torrent without a peer: the
// WebSocket tracker's browsers are counted this way (they are not in the store). It fails
// with swarm.ErrTooManyTorrents when the torrent is new and does not fit.
func (s *Store) CountCompletion(ih bittorrent.InfoHash) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.fill(ctx, "completion", "c", hex.EncodeToString(ih[:]))
}

// fill runs one of the script's operations that may create a torrent without an announce
// (op "c", a completion; "R", a restore) and reads its reply: swarm.ErrTooManyTorrents when
// the torrent did not fit, and on a cluster the torrent index updated (it sits in another
// slot, so the script cannot).
func (s *Store) fill(ctx context.Context, what, op, h string, extra ...any) error {
	reply, err := s.script.Run(ctx, s.rdb, s.keys(h), s.args(op, h, extra...)...).Slice()
	if err != nil {
		return s.m.fail(what, err)
	}
	if len(reply) < 2 {
		return s.m.fail(what, fmt.Errorf("short reply %v", reply))
	}
	if asInt(reply[0]) == 1 {
		return swarm.ErrTooManyTorrents
	}
	if s.cluster {
		s.reindex(ctx, h, asInt(reply[1]))
	}
	return nil
}

// Restore implements swarm.Store.
func (s *Store) Restore(ih bittorrent.InfoHash, downloaded uint32, peers []swarm.PeerRecord) error {
	h := hex.EncodeToString(ih[:])
	extra := make([]any, 0, 1+4*len(peers))
	extra = append(extra, downloaded)
	for i := range peers {
		p := &peers[i]
		if !p.Addr.IsValid() {
			continue
		}
		a := p.Addr.Addr().Unmap()
		flags := 0
		if p.Seeder {
			flags |= 1
		}
		if p.Hidden {
			flags |= 2
		}
		if p.Counted {
			flags |= 4
		}
		extra = append(extra, field(&p.ID, a), flags, compact(a, p.Addr.Port()), p.LastSeen.Unix())
	}
	ctx, cancel := s.readCtx() // a whole swarm in one call
	defer cancel()
	return s.fill(ctx, "restore", "R", h, extra...)
}

// Expire implements swarm.Store: it walks the torrent index and prunes each swarm in bounded
// batches.
func (s *Store) Expire() {
	s.rangeIndex(func(h string) bool {
		i, b, c := int64(2), int64(0), "0" // the first bucket of the first peer hash, from its start
		for i != 0 {
			ctx, cancel := s.ctx()
			reply, err := s.script.Run(ctx, s.rdb, s.keys(h), s.args("x", h, sweepBatch, i, b, c)...).Slice()
			if err == nil && len(reply) < 4 {
				err = fmt.Errorf("short reply %v", reply)
			}
			if err != nil {
				cancel()
				_ = s.m.fail("expire", err)
				return false // the next sweep tries again
			}
			if s.cluster {
				s.reindex(ctx, h, asInt(reply[3]))
			}
			cancel()
			i, b, c = asInt(reply[0]), asInt(reply[1]), fmt.Sprint(reply[2])
		}
		return true
	})
}

// Totals implements swarm.Store. On a cluster it sums the swarms' own counts (one pipelined
// round trip per about 256 torrents): exact with any number of instances, and its cost grows
// with the torrents.
func (s *Store) Totals() swarm.Totals {
	if s.cluster {
		return s.sumTotals()
	}
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := s.rdb.HGetAll(ctx, s.gKey).Result()
	if err != nil {
		_ = s.m.fail("totals", err)
		return swarm.Totals{}
	}
	n := func(k string) int { x, _ := strconv.Atoi(v[k]); return x }
	return swarm.Totals{
		Torrents:   n("t"),
		Seeders:    n("s"),
		Leechers:   n("l"),
		Downloaded: uint64(n("d")),
		PeersV4:    n("p4"),
		PeersV6:    n("p6"),
	}
}

// Health pings Redis (within the store's timeout) and returns why the store is unusable, or
// nil. /healthz answers 503 with it.
func (s *Store) Health() error {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.m.fail("health", err)
	}
	s.m.ok()
	return nil
}

func (s *Store) sumTotals() swarm.Totals {
	var tot swarm.Totals
	s.rangeMeta("totals", func(_ string, m meta) bool {
		tot.Torrents++
		tot.Seeders += int(m.s4 + m.s6)
		tot.Leechers += int(m.l4 + m.l6)
		tot.Downloaded += uint64(m.d)
		tot.PeersV4 += int(m.s4 + m.l4)
		tot.PeersV6 += int(m.s6 + m.l6)
		return true
	})
	return tot
}

// metaFields are the counts a swarm's meta hash keeps: its seeders and leechers by family
// and its completions (the field a torrent always has).
var metaFields = [...]string{"s4", "l4", "s6", "l6", "d"}

type meta struct{ s4, l4, s6, l6, d int64 }

// readMeta reads an HMGET of metaFields; false if the torrent does not exist.
func readMeta(v []any) (meta, bool) {
	if len(v) != len(metaFields) || v[4] == nil {
		return meta{}, false
	}
	return meta{asInt(v[0]), asInt(v[1]), asInt(v[2]), asInt(v[3]), asInt(v[4])}, true
}

// decodeRecord reads a peer's record (see announce.lua): compact address, last seen (4
// bytes), flags, and a key hash that is not read back.
func decodeRecord(id, rec string, v6, seeder bool) (swarm.PeerRecord, bool) {
	n := 6
	if v6 {
		n = 18
	}
	var p swarm.PeerRecord
	if len(id) != len(p.ID) || len(rec) < n+5 {
		return p, false
	}
	copy(p.ID[:], id)
	var ip netip.Addr
	if v6 {
		ip = netip.AddrFrom16([16]byte([]byte(rec[:16])))
	} else {
		ip = netip.AddrFrom4([4]byte([]byte(rec[:4])))
	}
	p.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16([]byte(rec[n-2:n])))
	p.LastSeen = time.Unix(int64(binary.BigEndian.Uint32([]byte(rec[n:n+4]))), 0)
	fl := rec[n+4]
	p.Seeder, p.Hidden, p.Counted = seeder, fl&2 != 0, fl&4 != 0
	return p, true
}
