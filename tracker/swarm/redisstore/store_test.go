package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// startRedis starts a real redis-server for the test and returns its address.
func startRedis(t testing.TB) string { return testenv.StartRedis(t) }

var prefixes atomic.Int64

// storeFactory returns a constructor of Stores on url, each with a prefix of its own (so the
// suite's cases do not see each other's swarms).
func storeFactory(url string) func(t *testing.T, cfg swarm.Config) swarm.Store {
	return func(t *testing.T, cfg swarm.Config) swarm.Store {
		return newStore(t, url, cfg, fmt.Sprintf("t%d:", prefixes.Add(1)))
	}
}

func newStore(t testing.TB, url string, cfg swarm.Config, prefix string) *Store {
	t.Helper()
	rdb, err := Dial(url, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	s, err := New(context.Background(), rdb, cfg, Options{Prefix: prefix, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSuiteSingleRedis(t *testing.T) {
	addr := startRedis(t)
	swarm.StoreSuite(t, storeFactory("redis://"+addr))
}

// TestTwoInstancesOneRedis: two stores (as two tracker processes would have) announcing the
// same swarms at once keep exact counts: Totals and every Scrape equal a recount of the
// stored peers.
func TestTwoInstancesOneRedis(t *testing.T) { twoInstances(t, "redis://"+startRedis(t)) }

func twoInstances(t *testing.T, url string) {
	clk := swarm.NewFakeClock(time.Unix(1_800_000_000, 0))
	cfg := swarm.Config{PeerTimeout: 30 * time.Minute, Now: clk.Now}
	a := newStore(t, url, cfg, "shared:")
	b := newStore(t, url, cfg, "shared:")
	const workers, peers, torrents = 8, 400, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if w%2 == 1 {
				s = b
			}
			var out swarm.PeerList
			for i := range peers {
				n := i*workers + w
				// Each peer goes through both instances: started, completed, some stopped.
				for step, ev := range []swarm.Event{swarm.Started, swarm.Completed, swarm.Stopped} {
					if ev == swarm.Stopped && n%3 != 0 {
						continue
					}
					left := uint64(1)
					if ev != swarm.Started {
						left = 0
					}
					st := s
					if step == 1 {
						st = map[*Store]*Store{a: b, b: a}[s]
					}
					out.Reset()
					ann := &swarm.Announce{InfoHash: swarm.SuiteInfoHash(n % torrents), PeerID: swarm.SuitePeerID(n),
						Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(n >> 8), byte(n)}), 6881),
						Key:  []byte{byte(n), byte(n >> 8)}, Left: left, Event: ev, NumWant: 20}
					if _, err := st.Announce(ann, &out); err != nil {
						t.Errorf("peer %d %v: %v", n, ev, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	total := workers * peers
	stopped := (total + 2) / 3
	var re swarm.Totals
	a.Walk(func(ih bittorrent.InfoHash, down uint32, ps []swarm.PeerRecord) bool {
		re.Torrents++
		re.Downloaded += uint64(down)
		var c swarm.Counts
		c.Downloaded = down
		for _, p := range ps {
			if p.Seeder {
				re.Seeders++
				c.Complete++
			} else {
				re.Leechers++
				c.Incomplete++
			}
			re.PeersV4++
		}
		if sc, ok := b.Scrape(ih); !ok || sc != c {
			t.Errorf("scrape %x: %+v %v, recount %+v", ih, sc, ok, c)
		}
		return true
	})
	for _, s := range []*Store{a, b} {
		if got := s.Totals(); got != re {
			t.Errorf("totals %+v, recount %+v", got, re)
		}
	}
	if re.Seeders != total-stopped || re.Leechers != 0 || re.Downloaded != uint64(total) || re.Torrents != torrents {
		t.Errorf("recount %+v, want %d seeders, %d completions, %d torrents", re, total-stopped, total, torrents)
	}
}

// TestKeysCarryHashTag: every key a swarm's announce writes carries the swarm's hash tag,
// so a swarm sits in one cluster slot.
func TestKeysCarryHashTag(t *testing.T) {
	url := "redis://" + startRedis(t)
	s := newStore(t, url, swarm.Config{}, "tag:")
	ih := swarm.SuiteInfoHash(1)
	var out swarm.PeerList
	if _, err := s.Announce(&swarm.Announce{InfoHash: ih, PeerID: swarm.SuitePeerID(1),
		Addr: netip.MustParseAddrPort("10.0.0.1:1"), Left: 1, Event: swarm.Started}, &out); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.keys(fmt.Sprintf("%x", ih[:]))[:swarmKeyCount] {
		if want := fmt.Sprintf("{%x}", ih[:]); !strings.Contains(k, want) {
			t.Errorf("swarm key %q lacks the hash tag %s", k, want)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: url[len("redis://"):]})
	defer rdb.Close()
	keys, _, err := rdb.Scan(context.Background(), 0, "tag:{*", 100).Result()
	if err != nil || len(keys) < 2 { // the meta hash and the leechers' hash
		t.Fatalf("swarm keys %v, %v", keys, err)
	}
}

func TestDialURLs(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"redis://127.0.0.1:6379", true},
		{"redis://user:pw@127.0.0.1:6379/2", true},
		{"rediss://127.0.0.1:6380", true},
		{"unix:///run/redis/redis.sock", true},
		{"redis-cluster://127.0.0.1:7000,127.0.0.1:7001", true},
		{"redis-cluster://127.0.0.1:7000,nohost", false},
		{"redis-cluster://127.0.0.1:7000/3", false},
		{"http://127.0.0.1:6379", false},
		{"redis://127.0.0.1:6379/notadb", false},
	} {
		c, err := Dial(tc.url, 0)
		if (err == nil) != tc.ok {
			t.Errorf("Dial(%q): err %v, want ok=%v", tc.url, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestStoreSuiteRedisCluster runs the conformance suite against a real Redis Cluster of 3
// masters and 3 replicas. The store-wide limits (torrents, total peers, peers per IP) are
// not enforced on a cluster (their counters would sit in another slot than the swarm), so
// the cases that set them are skipped, saying so.
func TestStoreSuiteRedisCluster(t *testing.T) {
	addrs := startCluster(t)
	url := "redis-cluster://" + strings.Join(addrs[:3], ",")
	swarm.StoreSuite(t, func(t *testing.T, cfg swarm.Config) swarm.Store {
		if cfg.MaxTorrents > 0 || cfg.MaxTotalPeers > 0 || cfg.MaxPeersPerIP > 0 {
			t.Skip("store-wide limits are not enforced on a Redis Cluster")
		}
		return newStore(t, url, cfg, fmt.Sprintf("c%d:", prefixes.Add(1)))
	})
}

// TestTwoInstancesCluster: two stores on one cluster keep exact counts, swarms spread over
// the three masters.
func TestTwoInstancesCluster(t *testing.T) {
	addrs := startCluster(t)
	twoInstances(t, "redis-cluster://"+strings.Join(addrs[:3], ","))
}

func startCluster(t testing.TB) []string { return testenv.StartRedisCluster(t) }

// TestCountCompletion: a completion counted without a peer (a browser's) creates its torrent,
// adds to the torrent's and the store's downloaded count once a call, and is refused when a
// new torrent does not fit.
func TestCountCompletion(t *testing.T) {
	s := newStore(t, "redis://"+startRedis(t), swarm.Config{MaxTorrents: 1}, "cc:")
	ih := swarm.SuiteInfoHash(7)
	for range 2 {
		if err := s.CountCompletion(ih); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := s.Scrape(ih); !ok || c.Downloaded != 2 {
		t.Errorf("scrape after two completions: %+v, %v; want downloaded 2", c, ok)
	}
	if tot := s.Totals(); tot.Torrents != 1 || tot.Downloaded != 2 {
		t.Errorf("totals %+v, want 1 torrent and 2 downloaded", tot)
	}
	// The store holds one torrent, and it has completions: a dead torrent gives way.
	if err := s.CountCompletion(swarm.SuiteInfoHash(8)); err != nil {
		t.Errorf("a second torrent with a dead one to evict: %v", err)
	}
	s2 := newStore(t, "redis://"+startRedis(t), swarm.Config{MaxTorrents: 1, KeepDead: true}, "cc2:")
	if err := s2.CountCompletion(ih); err != nil {
		t.Fatal(err)
	}
	if err := s2.CountCompletion(swarm.SuiteInfoHash(8)); !errors.Is(err, swarm.ErrTooManyTorrents) {
		t.Errorf("a new torrent in a full store that keeps dead ones: %v, want ErrTooManyTorrents", err)
	}
}

// TestCompactLayout: 20,000 keyed IPv4 peers in 200 swarms of 100 cost Redis at most 80
// bytes each (used_memory), every peer hash stays listpack-encoded, and no per-IP counts are
// kept without a per-IP limit. (The layout of one hash entry, one sorted-set entry and one
// set member a peer cost 222 bytes.)
func TestCompactLayout(t *testing.T) {
	const torrents, perSwarm, maxBytes = 200, 100, 80
	url := "redis://" + startRedis(t)
	s := newStore(t, url, swarm.Config{}, "compact:")
	ctx := context.Background()
	used := func() float64 { return redisInfo(t, s, "Memory", "used_memory") }
	before := used()
	var out swarm.PeerList
	for i := range torrents * perSwarm {
		out.Reset()
		a := &swarm.Announce{InfoHash: swarm.SuiteInfoHash(i % torrents), PeerID: swarm.SuitePeerID(i),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881),
			Key:  []byte{byte(i)}, Left: uint64(i % 2), NumWant: 50}
		if _, err := s.Announce(a, &out); err != nil {
			t.Fatal(err)
		}
	}
	if per := (used() - before) / (torrents * perSwarm); per > maxBytes {
		t.Errorf("Redis memory %.1f bytes a peer, want at most %d", per, maxBytes)
	}
	h := fmt.Sprintf("%x", swarm.SuiteInfoHash(0))
	for _, k := range s.keys(h)[1:swarmKeyCount] {
		if enc, err := s.rdb.ObjectEncoding(ctx, k).Result(); err == nil && enc != "listpack" {
			t.Errorf("%s is %s, want listpack", k, enc)
		}
	}
	if n, err := s.rdb.Exists(ctx, s.ipKey).Result(); err != nil || n != 0 {
		t.Errorf("per-IP counts kept without a per-IP limit (exists %d, %v)", n, err)
	}
}

// TestExpiredPeersNotHandedOut: a peer past the timeout is never in a reply, even before
// the sweep or an announce's pruning has removed it.
func TestExpiredPeersNotHandedOut(t *testing.T) {
	clk := swarm.NewFakeClock(time.Unix(1_800_000_000, 0))
	s := newStore(t, "redis://"+startRedis(t), swarm.Config{PeerTimeout: 16 * time.Minute, Now: clk.Now, GCInterval: -1}, "exp:")
	ih := swarm.SuiteInfoHash(3)
	var out swarm.PeerList
	announce := func(i int) {
		t.Helper()
		out.Reset()
		if _, err := s.Announce(&swarm.Announce{InfoHash: ih, PeerID: swarm.SuitePeerID(i),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881), Left: 1, NumWant: 50}, &out); err != nil {
			t.Fatal(err)
		}
	}
	announce(1)
	announce(2)
	if len(out.V4) != 6 {
		t.Fatalf("second peer got %d bytes of peers, want the first (6)", len(out.V4))
	}
	// Peer 2 announces 10 s before peer 1 expires: that announce's pruning pass finds
	// nothing to remove and pauses for a sixteenth of the timeout (1 min). 40 s later peer 1
	// has expired and is still stored.
	clk.Advance(16*time.Minute - 10*time.Second)
	announce(2)
	clk.Advance(40 * time.Second)
	announce(3)
	if len(out.V4) != 6 || out.V4[3] != 2 {
		t.Errorf("third peer got %v, want only peer 2 (10.0.0.2)", out.V4)
	}
}

// redisInfo reads one figure of INFO (section as INFO names it, e.g. "Memory").
func redisInfo(t testing.TB, s *Store, section, field string) float64 {
	t.Helper()
	info, err := s.rdb.InfoMap(context.Background(), strings.ToLower(section)).Result()
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(info[section][field], 64)
	if err != nil {
		t.Fatalf("INFO %s %s: %v", section, field, err)
	}
	return v
}

// TestBucketsBigSwarm: a swarm far above Redis's hash-max-listpack-entries (128) splits its
// peer hashes into buckets that all stay listpacks; every peer is found again (re-announces
// add no peer, a leecher turning seeder moves), stopped peers merge the buckets back, Walk
// sees exactly the stored peers, and the sweep empties it. Against one Redis and a cluster.
func TestBucketsBigSwarm(t *testing.T) {
	t.Run("SingleRedis", func(t *testing.T) { bucketsBigSwarm(t, "redis://"+startRedis(t)) })
	t.Run("Cluster", func(t *testing.T) {
		bucketsBigSwarm(t, "redis-cluster://"+strings.Join(startCluster(t)[:3], ","))
	})
}

func bucketsBigSwarm(t *testing.T, url string) {
	const peers = 1200
	clk := swarm.NewFakeClock(time.Unix(1_800_000_000, 0))
	s := newStore(t, url, swarm.Config{PeerTimeout: 30 * time.Minute, Now: clk.Now, GCInterval: -1}, "big:")
	ih := swarm.SuiteInfoHash(9)
	h := fmt.Sprintf("%x", ih[:])
	ctx := context.Background()
	addrOf := func(i int) netip.AddrPort {
		if i%4 == 3 {
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8)}), 6881)
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 6881)
	}
	announce := func(i int, left uint64, ev swarm.Event, want int) (swarm.Result, swarm.PeerList) {
		t.Helper()
		var out swarm.PeerList
		res, err := s.Announce(&swarm.Announce{InfoHash: ih, PeerID: swarm.SuitePeerID(i), Addr: addrOf(i),
			Key: []byte{byte(i)}, Left: left, Event: ev, NumWant: want}, &out)
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		return res, out
	}
	encodings := func() map[string]int {
		t.Helper()
		enc := map[string]int{}
		k := s.keys(h)
		nb, err := s.rdb.HMGet(ctx, k[0], "n4s", "n4l", "n6s", "n6l").Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range nb {
			buckets := int64(1)
			if v != nil {
				buckets = asInt(v)
			}
			for b := range buckets {
				key := k[1+i]
				if b > 0 {
					key += ":" + strconv.FormatInt(b, 10)
				}
				e, err := s.rdb.ObjectEncoding(ctx, key).Result()
				if errors.Is(err, redis.Nil) {
					continue
				} else if err != nil {
					t.Fatal(err)
				}
				enc[e]++
			}
		}
		return enc
	}
	for i := range peers {
		announce(i, uint64(i%2), swarm.Started, 0)
	}
	res, _ := announce(0, 0, swarm.None, 0)
	if res.Complete != peers/2 || res.Incomplete != peers/2 {
		t.Fatalf("counts %+v, want %d seeders and %d leechers", res.Counts, peers/2, peers/2)
	}
	if enc := encodings(); enc["hashtable"] != 0 || enc["listpack"] < 4*peers/2/128 {
		t.Fatalf("peer buckets by encoding %v: want only listpacks, at least %d", enc, 4*peers/2/128)
	}
	// Leechers finish: each is found in its bucket and moves; nothing is added.
	for i := 1; i < peers; i += 2 {
		announce(i, 0, swarm.Completed, 0)
	}
	res, out := announce(2, 0, swarm.None, 50)
	if res.Complete != peers || res.Incomplete != 0 || res.Downloaded != peers/2 {
		t.Fatalf("after completions %+v, want %d seeders, %d completions", res.Counts, peers, peers/2)
	}
	if len(out.V4)+len(out.V6) != 0 {
		t.Errorf("a seeder among seeders got %d bytes of peers", len(out.V4)+len(out.V6))
	}
	// A leecher gets 50 distinct peers, never itself.
	announce(peers, 1, swarm.Started, 0)
	_, out = announce(peers, 1, swarm.None, 50)
	got := map[string]bool{}
	for b := out.V4; len(b) >= 6; b = b[6:] {
		got[string(b[:6])] = true
	}
	for b := out.V6; len(b) >= 18; b = b[18:] {
		got[string(b[:18])] = true
	}
	if len(got) != 50 || len(out.V4)+len(out.V6) != 6*len(out.V4)/6+18*len(out.V6)/18 {
		t.Errorf("leecher got %d distinct peers (%d+%d bytes), want 50", len(got), len(out.V4), len(out.V6))
	}
	// Most stop: buckets merge back, still no hash table, and Walk sees the rest exactly.
	const left = 100
	for i := left; i < peers; i++ {
		announce(i, 0, swarm.Stopped, 0)
	}
	want := map[bittorrent.PeerID]bool{swarm.SuitePeerID(peers): true}
	for i := range left {
		want[swarm.SuitePeerID(i)] = true
	}
	n := 0
	s.Walk(func(wih bittorrent.InfoHash, _ uint32, ps []swarm.PeerRecord) bool {
		for _, p := range ps {
			if wih != ih || !want[p.ID] {
				t.Errorf("walk: unexpected peer %q of %x", p.ID[:], wih)
			}
			n++
		}
		return true
	})
	if n != len(want) {
		t.Errorf("walk saw %d peers, want %d", n, len(want))
	}
	nb, err := s.rdb.HMGet(ctx, s.keys(h)[0], "n4s", "n6s").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range nb {
		if v != nil && asInt(v) > left/16+1 { // merged back to at least 16 peers a bucket
			t.Errorf("after stops the seeders' hashes keep %v buckets for %d peers", nb, left)
		}
	}
	// Everyone expires: the sweep empties the swarm; only its completions stay.
	clk.Advance(31 * time.Minute)
	s.Expire()
	if c, ok := s.Scrape(ih); !ok || c.Complete+c.Incomplete != 0 || c.Downloaded != peers/2 {
		t.Errorf("after expiry %+v %v, want no peers and %d completions", c, ok, peers/2)
	}
	if enc := encodings(); len(enc) != 0 {
		t.Errorf("peer buckets left after expiry: %v", enc)
	}
}
