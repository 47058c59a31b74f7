package swarm

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Config configures a Memory store. The zero value of each field means its default.
type Config struct {
	// PeerTimeout is how long a peer stays without announcing (bttrack's
	// timeout_downloaders_interval). Default 45 min; at most MaxPeerTimeout.
	PeerTimeout time.Duration
	// GCInterval is how often expired peers are swept. Default min(PeerTimeout/4, 1 min).
	GCInterval time.Duration
	// MaxTorrents caps the number of torrents (0: no cap).
	MaxTorrents int
	// MaxPeers caps each torrent's peers per address family (0: no cap).
	MaxPeers int
	// MaxTotalPeers caps the peers of all torrents together (0: no cap).
	MaxTotalPeers int
	// MaxPeersPerIP caps the peers registered from one IPv4 address or one IPv6 /64, over
	// all torrents (0: no cap). A client cannot register more torrents than this either: a
	// torrent is created by its first peer.
	MaxPeersPerIP int
	// KeepDead keeps torrents that have no peers left (bttrack's keep_dead).
	KeepDead bool
	// Shards is the number of lock shards, rounded up to a power of two. Default 1024.
	Shards int
	// Now is the clock; default time.Now. Tests pass a fake one.
	Now func() time.Time
}

// MaxPeerTimeout bounds PeerTimeout: peer ages are kept in 16 bits of seconds.
const MaxPeerTimeout = 18 * time.Hour

func (c *Config) setDefaults() error {
	if c.PeerTimeout == 0 {
		c.PeerTimeout = 45 * time.Minute
	}
	if c.PeerTimeout < time.Second || c.PeerTimeout > MaxPeerTimeout {
		return fmt.Errorf("swarm: peer timeout %v outside 1s..%v", c.PeerTimeout, MaxPeerTimeout)
	}
	if c.GCInterval == 0 {
		c.GCInterval = min(c.PeerTimeout/4, time.Minute)
	}
	if c.GCInterval < 0 || c.GCInterval > 10*time.Minute {
		return fmt.Errorf("swarm: GC interval %v outside 0..10m", c.GCInterval)
	}
	if c.Shards <= 0 {
		c.Shards = 1024
	}
	n := 1
	for n < c.Shards {
		n *= 2
	}
	c.Shards = n
	if c.MaxTorrents < 0 || c.MaxPeers < 0 || c.MaxTotalPeers < 0 || c.MaxPeersPerIP < 0 {
		return fmt.Errorf("swarm: negative limit (max torrents %d, max peers %d, total %d, per IP %d)",
			c.MaxTorrents, c.MaxPeers, c.MaxTotalPeers, c.MaxPeersPerIP)
	}
	if c.MaxPeers == 0 || c.MaxPeers > maxEntries {
		c.MaxPeers = maxEntries
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Memory is the in-memory Store.
type Memory struct {
	cfg      Config
	seed     maphash.Seed
	keySeed  maphash.Seed // the secret of keyHash
	shards   []shard
	timeout  uint16 // PeerTimeout in seconds
	torrents atomic.Int64
	peers    atomic.Int64 // all torrents' peers, for MaxTotalPeers
	byIP     ipCounts     // peers per IP, for MaxPeersPerIP
	now      atomic.Int64 // coarse clock: Unix seconds, refreshed every 250 ms
	records  sync.Pool    // *[]PeerRecord buffers for Walk and Peers

	stop chan struct{}
	done chan struct{}
}

type shard struct {
	mu       sync.Mutex
	torrents map[bittorrent.InfoHash]*torrent
	_        [40]byte // keep neighbouring shards' locks off one cache line
}

type torrent struct {
	downloaded uint32
	v4, v6     *table
}

var _ Store = (*Memory)(nil)

// NewMemory returns a Memory store and starts its clock and expiry sweeper; Close stops them.
func NewMemory(cfg Config) (*Memory, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m := &Memory{
		cfg:     cfg,
		seed:    maphash.MakeSeed(),
		keySeed: maphash.MakeSeed(),
		shards:  make([]shard, cfg.Shards),
		timeout: uint16(cfg.PeerTimeout / time.Second),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	m.records.New = func() any { return new([]PeerRecord) }
	m.byIP.init(cfg.MaxPeersPerIP)
	for i := range m.shards {
		m.shards[i].torrents = make(map[bittorrent.InfoHash]*torrent)
	}
	m.now.Store(cfg.Now().Unix())
	go m.run()
	return m, nil
}

func (m *Memory) run() {
	defer close(m.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastGC := m.now.Load()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			now := m.tick()
			if time.Duration(now-lastGC)*time.Second >= m.cfg.GCInterval {
				lastGC = now
				m.Expire()
			}
		}
	}
}

// Close stops the clock and the sweeper.
func (m *Memory) Close() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
	return nil
}

func (m *Memory) shardOf(ih *bittorrent.InfoHash) *shard {
	// Info-hashes are SHA-1 output: their bytes are already uniform.
	return &m.shards[(uint(ih[0])|uint(ih[1])<<8|uint(ih[2])<<16)&uint(len(m.shards)-1)]
}

func (m *Memory) now16() uint16 { return uint16(m.now.Load()) }

// tick advances the coarse clock to the current time and returns it. The clock never moves
// back (a wall clock stepped back, or two callers racing): a peer's 16-bit "seen" ahead of
// the clock would look 18 hours old and be expired.
func (m *Memory) tick() int64 {
	now := m.cfg.Now().Unix()
	for {
		old := m.now.Load()
		if now <= old {
			return old
		}
		if m.now.CompareAndSwap(old, now) {
			return now
		}
	}
}

// keyHash is a keyBits-bit hash of a client's key, keyed with the store's per-process random
// secret: without the secret an attacker cannot search for a colliding key offline, and
// online a match takes ~2^28 announces per victim. Being per process, key hashes are never
// saved: Restore brings peers back without a key, and each learns its key again at its first
// announce from its own address (until then it cannot move, as a keyless peer cannot).
func (m *Memory) keyHash(key []byte) uint32 {
	return uint32(maphash.Bytes(m.keySeed, key) >> (64 - keyBits))
}

// peerTag returns a peer's tag for an announce with key, keeping the given flags. A key
// (any non-empty one) is remembered with flagKeyed; an empty key leaves the peer keyless.
func (m *Memory) peerTag(key []byte, flags uint32) uint32 {
	flags &= flagMask &^ flagKeyed
	if len(key) == 0 {
		return flags
	}
	return m.keyHash(key)<<flagBits | flags | flagKeyed
}

// mayMove reports whether an announce with key from addr (putAddr form) may act on a stored
// peer that was registered from another address (move it, stop it, count its completion),
// and if not, which refusal to give. A keyed peer moves only with its key. A keyless peer
// moves only within its IP address (a new port, as bttrack allowed): anything else is
// "ip changed", for otherwise anyone who learnt its peer ID could take it over.
func (m *Memory) mayMove(tb *table, rec []byte, tag uint32, key, addr []byte) error {
	if tag&flagKeyed != 0 {
		if len(key) == 0 || tag>>flagBits != m.keyHash(key) {
			return ErrPeerIDTaken
		}
		return nil
	}
	ip := len(addr) - 2
	if string(tb.addr(rec)[:ip]) != string(addr[:ip]) {
		return ErrIPChanged
	}
	return nil
}

// Announce implements Store.
func (m *Memory) Announce(a *Announce, out *PeerList) (Result, error) {
	addr := a.Addr.Addr().Unmap()
	v4 := addr.Is4()
	sh := m.shardOf(&a.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[a.InfoHash]
	if t == nil {
		if a.Event == Stopped {
			return Result{}, nil
		}
		if m.cfg.MaxTorrents > 0 && m.torrents.Load() >= int64(m.cfg.MaxTorrents) && !m.evictDead(sh) {
			return Result{}, ErrTooManyTorrents
		}
		// The peer's own limits first: a refused peer must not leave an empty torrent.
		if err := m.admit(addr); err != nil {
			return Result{}, err
		}
		t = &torrent{}
		sh.torrents[a.InfoHash] = t
		m.torrents.Add(1)
		tb := newTable(18)
		if v4 {
			tb = newTable(6)
			t.v4 = tb
		} else {
			t.v6 = tb
		}
		return m.register(a, out, t, tb, hashID(m.seed, &a.PeerID), addr, v4), nil
	}
	tb := t.v6
	if v4 {
		tb = t.v4
	}
	if tb == nil {
		if a.Event == Stopped {
			return Result{Counts: t.counts()}, nil
		}
		if v4 {
			tb = newTable(6)
			t.v4 = tb
		} else {
			tb = newTable(18)
			t.v6 = tb
		}
	}

	h := hashID(m.seed, &a.PeerID)
	self := -1
	var pos int
	var found bool
	if len(tb.index) > 0 {
		pos, found = tb.lookup(&a.PeerID, h)
	}
	seeder := a.Left == 0
	hidden := false
	var addrBuf [18]byte
	ab := putAddr(addrBuf[:0], addr, a.Addr.Port())

	switch {
	case a.Event == Stopped:
		if found {
			r := int(tb.index[pos]&slotMask) - 1
			rec := tb.rec(r)
			if string(tb.addr(rec)) != string(ab) {
				if err := m.mayMove(tb, rec, tb.tag(rec), a.Key, ab); err != nil {
					return Result{Counts: t.counts()}, err
				}
			}
			m.release(tb.ip(rec))
			tb.remove(m.seed, r, pos)
		}
		return Result{Counts: t.counts()}, nil
	case found:
		self = int(tb.index[pos]&slotMask) - 1
		rec := tb.rec(self)
		tag := tb.tag(rec)
		if string(tb.addr(rec)) != string(ab) {
			if err := m.mayMove(tb, rec, tag, a.Key, ab); err != nil {
				return Result{Counts: t.counts()}, err
			}
			// A move adds no peer: it is counted under its new IP whatever the limit.
			if old := tb.ip(rec); old != addr {
				m.byIP.add(old, -1)
				m.byIP.add(addr, 1)
			}
			copy(tb.addr(rec), ab)
		}
		wasSeeder := self < tb.nSeed
		if seeder && !wasSeeder {
			if tag&flagCounted == 0 {
				tag |= flagCounted
				t.downloaded++
			}
			self = tb.promote(m.seed, self)
		} else if !seeder && wasSeeder {
			self = tb.demote(m.seed, self)
		}
		if a.Event == Completed && tag&flagCounted == 0 {
			tag |= flagCounted
			t.downloaded++
		}
		rec = tb.rec(self)
		tb.setTag(rec, m.peerTag(a.Key, tag))
		tb.setSeen(rec, m.now16())
		hidden = tag&flagHidden != 0
	default:
		if tb.n >= m.cfg.MaxPeers {
			return Result{Counts: t.counts()}, ErrTooManyPeers
		}
		if err := m.admit(addr); err != nil {
			return Result{Counts: t.counts()}, err
		}
		return m.register(a, out, t, tb, h, addr, v4), nil
	}
	return m.appendList(a, out, t, tb, self, seeder, v4, hidden), nil
}

// register inserts the announcer as a new peer of t (in tb, its family's table; the caller
// has admitted it) and appends its peer list.
func (m *Memory) register(a *Announce, out *PeerList, t *torrent, tb *table, h uint64, addr netip.Addr, v4 bool) Result {
	seeder := a.Left == 0
	self := tb.insert(m.seed, &a.PeerID, h, seeder)
	rec := tb.rec(self)
	var buf [18]byte
	copy(tb.addr(rec), putAddr(buf[:0], addr, a.Addr.Port()))
	var flags uint32
	if a.Event == Completed {
		// A peer whose first announce says completed finished while we did not know it.
		flags |= flagCounted
		t.downloaded++
	}
	if a.Hidden {
		flags |= flagHidden
	}
	tb.setTag(rec, m.peerTag(a.Key, flags))
	tb.setSeen(rec, m.now16())
	return m.appendList(a, out, t, tb, self, seeder, v4, a.Hidden)
}

// appendList appends up to a.NumWant peers other than self to out and returns the result.
func (m *Memory) appendList(a *Announce, out *PeerList, t *torrent, tb *table, self int, seeder, v4, hidden bool) Result {
	if a.NumWant > 0 {
		want := a.NumWant
		withID := out.Format == WithID
		// The announcer's own family first, then the other family for what is left.
		own, other := &out.V4, &out.V6
		ot := t.v6
		if !v4 {
			own, other = other, own
			ot = t.v4
		}
		before := len(*own)
		*own = appendFrom(tb, *own, withID, seeder, self, want)
		want -= (len(*own) - before) / recLen(tb.alen, withID)
		if want > 0 && ot != nil {
			*other = appendFrom(ot, *other, withID, seeder, -1, want)
		}
	}
	return Result{Counts: t.counts(), Hidden: hidden}
}

// evictDead makes room for a new torrent in a full store by dropping one torrent of shard sh
// that has no peers, only completions (without KeepDead such torrents are kept for their
// counts alone, and a client can make any number of them: complete, then stop). It reports
// whether it dropped one. sh is locked.
func (m *Memory) evictDead(sh *shard) bool {
	if m.cfg.KeepDead {
		return false
	}
	for ih, t := range sh.torrents {
		if t.peers() == 0 {
			delete(sh.torrents, ih)
			m.torrents.Add(-1)
			return true
		}
	}
	return false
}

// admit counts one more peer from addr, or refuses it with the limit it would pass.
func (m *Memory) admit(addr netip.Addr) error {
	for {
		n := m.peers.Load()
		if m.cfg.MaxTotalPeers > 0 && n >= int64(m.cfg.MaxTotalPeers) {
			return ErrTrackerPeersFull
		}
		if m.peers.CompareAndSwap(n, n+1) { // announces in other shards race for the last slots
			break
		}
	}
	if !m.byIP.acquire(addr) {
		m.peers.Add(-1)
		return ErrTooManyPeersFromIP
	}
	return nil
}

// release uncounts a peer from addr that is leaving the store.
func (m *Memory) release(addr netip.Addr) {
	m.peers.Add(-1)
	m.byIP.add(addr, -1)
}

func recLen(alen int, withID bool) int {
	if withID {
		return alen + 20
	}
	return alen
}

func appendFrom(tb *table, dst []byte, withID, seeder bool, self, want int) []byte {
	lo := 0
	if seeder {
		lo = tb.nSeed
	}
	return tb.appendPeers(dst, withID, lo, tb.n, self, want)
}

func putAddr(dst []byte, a netip.Addr, port uint16) []byte {
	if a.Is4() {
		b := a.As4()
		dst = append(dst, b[:]...)
	} else {
		b := a.As16()
		dst = append(dst, b[:]...)
	}
	return append(dst, byte(port>>8), byte(port))
}

func (t *torrent) counts() Counts {
	var c Counts
	c.Downloaded = t.downloaded
	for _, tb := range []*table{t.v4, t.v6} {
		if tb != nil {
			c.Complete += uint32(tb.nSeed)
			c.Incomplete += uint32(tb.n - tb.nSeed)
		}
	}
	return c
}

func (t *torrent) peers() int {
	n := 0
	if t.v4 != nil {
		n += t.v4.n
	}
	if t.v6 != nil {
		n += t.v6.n
	}
	return n
}

// Reveal implements Store.
func (m *Memory) Reveal(ih bittorrent.InfoHash, id bittorrent.PeerID, addr netip.AddrPort) {
	a := addr.Addr().Unmap()
	sh := m.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[ih]
	if t == nil {
		return
	}
	tb := t.v6
	if a.Is4() {
		tb = t.v4
	}
	if tb == nil || len(tb.index) == 0 {
		return
	}
	pos, found := tb.lookup(&id, hashID(m.seed, &id))
	if !found {
		return
	}
	var buf [18]byte
	rec := tb.rec(int(tb.index[pos]&slotMask) - 1)
	if string(tb.addr(rec)) == string(putAddr(buf[:0], a, addr.Port())) {
		tb.setTag(rec, tb.tag(rec)&^flagHidden)
	}
}

// CountCompletion counts one completed download of the torrent without a peer: the
// WebSocket tracker's browsers, which live outside the store, complete downloads that are
// counted and saved with the others. The torrent is added if the store does not hold it
// (ErrTooManyTorrents when it holds MaxTorrents).
func (m *Memory) CountCompletion(ih bittorrent.InfoHash) error {
	sh := m.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[ih]
	if t == nil {
		if m.cfg.MaxTorrents > 0 && m.torrents.Load() >= int64(m.cfg.MaxTorrents) && !m.evictDead(sh) {
			return ErrTooManyTorrents
		}
		t = &torrent{}
		sh.torrents[ih] = t
		m.torrents.Add(1)
	}
	t.downloaded++
	return nil
}

// Scrape implements Store.
func (m *Memory) Scrape(ih bittorrent.InfoHash) (Counts, bool) {
	sh := m.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[ih]
	if t == nil {
		return Counts{}, false
	}
	return t.counts(), true
}

// RangeTorrents implements Store. fn runs under a shard lock: it must not call the store.
func (m *Memory) RangeTorrents(fn func(ih bittorrent.InfoHash, c Counts) bool) {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for ih, t := range sh.torrents {
			if !fn(ih, t.counts()) {
				sh.mu.Unlock()
				return
			}
		}
		sh.mu.Unlock()
	}
}

// Walk implements Store. fn runs under a shard lock: it must not call the store.
func (m *Memory) Walk(fn func(ih bittorrent.InfoHash, downloaded uint32, peers []PeerRecord) bool) {
	bp := m.records.Get().(*[]PeerRecord)
	defer m.putRecords(bp)
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		now := m.now.Load() // under the lock: no record's "seen" is ahead of it
		for ih, t := range sh.torrents {
			*bp = t.appendRecords((*bp)[:0], now)
			if !fn(ih, t.downloaded, *bp) {
				sh.mu.Unlock()
				return
			}
		}
		sh.mu.Unlock()
	}
}

// Peers implements Store. fn runs under the torrent's shard lock: it must not call the store.
func (m *Memory) Peers(ih bittorrent.InfoHash, fn func(downloaded uint32, peers []PeerRecord)) bool {
	bp := m.records.Get().(*[]PeerRecord)
	defer m.putRecords(bp)
	sh := m.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[ih]
	if t == nil {
		return false
	}
	// The clock is read under the lock, as in Walk: no record's 16-bit "seen" is ahead of it
	// (one that were would look 18 hours old).
	*bp = t.appendRecords((*bp)[:0], m.now.Load())
	fn(t.downloaded, *bp)
	return true
}

// putRecords returns a PeerRecord buffer to the pool, unless one torrent made it huge: a
// save visits every torrent, and the pool should not pin the biggest one's worth for good.
func (m *Memory) putRecords(bp *[]PeerRecord) {
	if cap(*bp) > 1<<16 {
		return
	}
	clear(*bp) // no stale Addr zone pointers kept alive
	*bp = (*bp)[:0]
	m.records.Put(bp)
}

// appendRecords appends the torrent's peers as PeerRecords, their last-seen times taken
// relative to now (the coarse clock, read under the shard lock).
func (t *torrent) appendRecords(buf []PeerRecord, now int64) []PeerRecord {
	now16 := uint16(now)
	for _, tb := range []*table{t.v4, t.v6} {
		if tb == nil {
			continue
		}
		for r := 0; r < tb.n; r++ {
			rec := tb.rec(r)
			tag := tb.tag(rec)
			ip := tb.ip(rec)
			port := uint16(rec[20+tb.alen-2])<<8 | uint16(rec[20+tb.alen-1])
			age := int64(now16 - tb.seen(rec))
			buf = append(buf, PeerRecord{
				ID:       *tb.id(rec),
				Addr:     netip.AddrPortFrom(ip, port),
				Seeder:   r < tb.nSeed,
				Hidden:   tag&flagHidden != 0,
				Counted:  tag&flagCounted != 0,
				LastSeen: time.Unix(now-age, 0),
			})
		}
	}
	return buf
}

// Restore implements Store. Peers that already exist are left as they are.
func (m *Memory) Restore(ih bittorrent.InfoHash, downloaded uint32, peers []PeerRecord) error {
	now := m.now.Load()
	sh := m.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[ih]
	if t == nil {
		if m.cfg.MaxTorrents > 0 && m.torrents.Load() >= int64(m.cfg.MaxTorrents) {
			return ErrTooManyTorrents
		}
		t = &torrent{}
		sh.torrents[ih] = t
		m.torrents.Add(1)
	}
	t.downloaded = max(t.downloaded, downloaded)
	for i := range peers {
		p := &peers[i]
		age := now - p.LastSeen.Unix()
		if age > int64(m.timeout) || !p.Addr.IsValid() {
			continue
		}
		age = max(age, 0)
		a := p.Addr.Addr().Unmap()
		tb := t.v6
		if a.Is4() {
			if t.v4 == nil {
				t.v4 = newTable(6)
			}
			tb = t.v4
		} else if tb == nil {
			t.v6 = newTable(18)
			tb = t.v6
		}
		if tb.n >= m.cfg.MaxPeers {
			continue
		}
		h := hashID(m.seed, &p.ID)
		if len(tb.index) > 0 {
			if _, found := tb.lookup(&p.ID, h); found {
				continue
			}
		}
		// A saved peer is counted, but not refused, under its IP: it was admitted once.
		if m.cfg.MaxTotalPeers > 0 && m.peers.Load() >= int64(m.cfg.MaxTotalPeers) {
			continue
		}
		m.peers.Add(1)
		m.byIP.add(a, 1)
		r := tb.insert(m.seed, &p.ID, h, p.Seeder)
		rec := tb.rec(r)
		var buf [18]byte
		copy(tb.addr(rec), putAddr(buf[:0], a, p.Addr.Port()))
		var flags uint32
		if p.Counted {
			flags |= flagCounted
		}
		if p.Hidden {
			flags |= flagHidden
		}
		tb.setTag(rec, flags) // keyless until it announces from its own address (see keyHash)
		tb.setSeen(rec, uint16(now-age))
	}
	if t.peers() == 0 && !m.cfg.KeepDead && t.downloaded == 0 {
		delete(sh.torrents, ih)
		m.torrents.Add(-1)
	}
	return nil
}

// Expire removes peers that have not announced within the peer timeout, and torrents left
// with no peers and no completions (unless KeepDead). It locks one shard at a time.
func (m *Memory) Expire() {
	m.tick()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		// Read the clock under the shard lock: every "seen" in the shard was written from a
		// clock no later than this, so none looks ahead of it (which 16-bit ages would take
		// for 18 hours old).
		now16 := m.now16()
		for ih, t := range sh.torrents {
			for _, tb := range []*table{t.v4, t.v6} {
				if tb == nil {
					continue
				}
				// Downward: remove fills a hole only from records above it, already checked.
				for r := tb.n - 1; r >= 0; r-- {
					if rec := tb.rec(r); now16-tb.seen(rec) > m.timeout {
						m.release(tb.ip(rec))
						tb.remove(m.seed, r, tb.posOf(m.seed, r))
					}
				}
			}
			if t.v4 != nil && t.v4.n == 0 {
				t.v4 = nil
			}
			if t.v6 != nil && t.v6.n == 0 {
				t.v6 = nil
			}
			if t.peers() == 0 && !m.cfg.KeepDead && t.downloaded == 0 {
				delete(sh.torrents, ih)
				m.torrents.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
}

// Totals implements Store.
func (m *Memory) Totals() Totals {
	var tot Totals
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		tot.Torrents += len(sh.torrents)
		for _, t := range sh.torrents {
			c := t.counts()
			tot.Seeders += int(c.Complete)
			tot.Leechers += int(c.Incomplete)
			tot.Downloaded += uint64(c.Downloaded)
			if t.v4 != nil {
				tot.PeersV4 += t.v4.n
			}
			if t.v6 != nil {
				tot.PeersV6 += t.v6.n
			}
		}
		sh.mu.Unlock()
	}
	return tot
}
