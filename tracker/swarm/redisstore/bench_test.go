package redisstore

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// The client A/B: the same announce script, the same swarms (1,000 torrents, 20 peers each,
// numwant 50, re-announces), through go-redis (one connection per call in flight, from a
// pool) and through rueidis (auto-pipelining: concurrent calls share connections and are
// written in batches). Run with:
//
//	go test -run '^$' -bench Client -benchmem -cpu 1,8 ./tracker/swarm/redisstore/

const benchTorrents, benchPeers = 1000, 20

// benchStore starts a redis-server and fills a Store's swarms; it returns both.
func benchStore(b *testing.B) (string, *Store) {
	addr := startRedis(b)
	s := newStore(b, "redis://"+addr, swarm.Config{}, "bench:")
	benchPopulate(b, s)
	return addr, s
}

func benchPopulate(b *testing.B, s *Store) {
	var out swarm.PeerList
	for i := range benchTorrents * benchPeers {
		out.Reset()
		if _, err := s.Announce(benchAnnounce(i), &out); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAnnounce(i int) *swarm.Announce {
	return &swarm.Announce{InfoHash: swarm.SuiteInfoHash(i % benchTorrents), PeerID: swarm.SuitePeerID(i),
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881),
		Left: uint64(i % 2), NumWant: 50}
}

// BenchmarkClientGoRedis measures Store.Announce (go-redis) per announce.
func BenchmarkClientGoRedis(b *testing.B) {
	_, s := benchStore(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var out swarm.PeerList
		for pb.Next() {
			out.Reset()
			if _, err := s.Announce(benchAnnounce(int(n.Add(1))%(benchTorrents*benchPeers)), &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkClientRueidis runs the same script with the same arguments through rueidis.
func BenchmarkClientRueidis(b *testing.B) {
	addr, s := benchStore(b)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	script := rueidis.NewLuaScript(scriptSrc)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var out swarm.PeerList
		for pb.Next() {
			a := benchAnnounce(int(n.Add(1)) % (benchTorrents * benchPeers))
			h := hex.EncodeToString(a.InfoHash[:])
			addr := a.Addr.Addr()
			seeder := "0"
			if a.Left == 0 {
				seeder = "1"
			}
			args := []string{"a", s.opt.Prefix, h, strconv.FormatInt(time.Now().Unix(), 10), strconv.FormatInt(s.timeout, 10),
				"0", strconv.Itoa(s.cfg.MaxPeers), "0", "0", "0",
				field(&a.PeerID, addr), compact(addr, a.Addr.Port()), "", seeder, "0", "50", "0",
				strconv.FormatUint(uint64(mrand.Uint32()), 10), "0"}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			vals, err := script.Exec(ctx, c, s.keys(h), args).ToArray()
			cancel()
			if err != nil || len(vals) != 10 {
				b.Error(fmt.Errorf("exec: %w (%d values)", err, len(vals)))
				return
			}
			out.Reset()
			recs, _ := vals[6].ToString()
			out.V4 = appendPeers(out.V4, recs, "", 6)
		}
	})
}

var (
	memPeers    = flag.Int("mempeers", 100_000, "BenchmarkRedisMemoryPerPeer: peers in 1,000 swarms")
	memListpack = flag.Int("listpack", 0, "BenchmarkRedisMemoryPerPeer: Redis's hash-max-listpack-entries (0: its default, 128)")
)

// BenchmarkRedisMemoryPerPeer reports Redis's used_memory per IPv4 peer (bytes/peer) after
// -mempeers peers (default 100,000) in 1,000 swarms announced through 8 goroutines, each peer
// with a key; -listpack N sets Redis's hash-max-listpack-entries first. b.N is ignored: run
// with -benchtime 1x.
func BenchmarkRedisMemoryPerPeer(b *testing.B) {
	const torrents = 1000
	peers := *memPeers
	addr := startRedis(b)
	s := newStore(b, "redis://"+addr, swarm.Config{}, "mem:")
	if *memListpack > 0 {
		if err := s.rdb.ConfigSet(context.Background(), "hash-max-listpack-entries", strconv.Itoa(*memListpack)).Err(); err != nil {
			b.Fatal(err)
		}
	}
	used := func() float64 { return redisInfo(b, s, "Memory", "used_memory") }
	before := used()
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out swarm.PeerList
			for i := int(n.Add(1)); i <= peers; i = int(n.Add(1)) {
				a := &swarm.Announce{InfoHash: swarm.SuiteInfoHash(i % torrents), PeerID: swarm.SuitePeerID(i),
					Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881),
					Key:  []byte{byte(i)}, Left: uint64(i % 2), NumWant: 0}
				if _, err := s.Announce(a, &out); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric((used()-before)/float64(peers), "bytes/peer")
}

// BenchmarkScriptCost reports what one announce costs Redis itself, over re-announces in
// 1,000 swarms of 20 peers, numwant 50, from one goroutine: redis-cpu-µs/announce is the
// CPU time of Redis's main thread (INFO cpu, user + system; the robust figure on a loaded
// machine), redis-µs/announce is usec_per_call of EVALSHA (INFO commandstats: the script's
// time, which other load inflates).
//
//	go test -run '^$' -bench ScriptCost -benchtime 20000x ./tracker/swarm/redisstore/
func BenchmarkScriptCost(b *testing.B) {
	_, s := benchStore(b)
	ctx := context.Background()
	if err := s.rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	cpu := func() float64 {
		return redisInfo(b, s, "CPU", "used_cpu_user_main_thread") + redisInfo(b, s, "CPU", "used_cpu_sys_main_thread")
	}
	before := cpu()
	var out swarm.PeerList
	b.ResetTimer()
	for i := range b.N {
		out.Reset()
		if _, err := s.Announce(benchAnnounce(i%(benchTorrents*benchPeers)), &out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpu()-before)*1e6/float64(b.N), "redis-cpu-µs/announce")
	info, err := s.rdb.InfoMap(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, kv := range strings.Split(info["Commandstats"]["cmdstat_evalsha"], ",") {
		if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
			f, _ := strconv.ParseFloat(v, 64)
			b.ReportMetric(f, "redis-µs/announce")
		}
	}
}

// BenchmarkRangeTorrents and BenchmarkWalk: what the stats page, /stats.json and the /metrics
// gauges cost to read from the shared store (1,000 torrents, 20,000 peers), per full read.
func BenchmarkRangeTorrents(b *testing.B) {
	_, s := benchStore(b)
	b.ResetTimer()
	for range b.N {
		n := 0
		s.RangeTorrents(func(bittorrent.InfoHash, swarm.Counts) bool { n++; return true })
		if n != benchTorrents {
			b.Fatalf("%d torrents, want %d", n, benchTorrents)
		}
	}
}

func BenchmarkWalk(b *testing.B) {
	_, s := benchStore(b)
	b.ResetTimer()
	for range b.N {
		n := 0
		s.Walk(func(_ bittorrent.InfoHash, _ uint32, peers []swarm.PeerRecord) bool { n += len(peers); return true })
		if n != benchTorrents*benchPeers {
			b.Fatalf("%d peers, want %d", n, benchTorrents*benchPeers)
		}
	}
}
