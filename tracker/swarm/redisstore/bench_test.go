package redisstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// The client A/B: the same announce script, the same swarms (1,000 torrents, 20 peers each,
// numwant 50, re-announces), through go-redis (one connection per call in flight, from a
// pool) and through rueidis (auto-pipelining: concurrent calls share connections and are
// written in batches). Run with:
//
//	go test -run '^$' -bench Client -benchmem -cpu 1,8 ./tracker/swarm/redisstore/

const benchTorrents, benchPeers = 1000, 20

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
	addr := startRedis(b)
	s := newStore(b, "redis://"+addr, swarm.Config{}, "bench:")
	benchPopulate(b, s)
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
	addr := startRedis(b)
	s := newStore(b, "redis://"+addr, swarm.Config{}, "bench:")
	benchPopulate(b, s)
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
				field(&a.PeerID, addr), compact(addr, a.Addr.Port()), "", seeder, "0", "50", "0"}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			vals, err := script.Exec(ctx, c, s.keys(h), args).ToArray()
			cancel()
			if err != nil || len(vals) < 6 {
				b.Error(fmt.Errorf("exec: %w (%d values)", err, len(vals)))
				return
			}
			out.Reset()
			for _, v := range vals[6:] {
				p, _ := v.ToString()
				if len(p) == 26 {
					out.V4 = append(out.V4, p[:6]...)
				}
			}
		}
	})
}
