package swarm

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// ipCounts counts the peers registered from each IP address (IPv6: each /64, what one
// subscriber is given) over all torrents, sharded so that no lock spans many announces.
// Lock order: a torrent shard's lock, then an ipCounts shard's.
type ipCounts struct {
	max    int32 // 0: counted, never refused
	seed   maphash.Seed
	shards [64]ipShard
}

type ipShard struct {
	mu sync.Mutex
	n  map[netip.Addr]int32
	_  [48]byte // keep neighbouring shards' locks off one cache line
}

func (c *ipCounts) init(max int) {
	c.max = int32(min(max, 1<<30))
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].n = make(map[netip.Addr]int32)
	}
}

// ipKey is what a peer's address is counted under: itself, or its /64 for IPv6.
func ipKey(a netip.Addr) netip.Addr {
	if a.Is4() {
		return a
	}
	b := a.As16()
	clear(b[8:])
	return netip.AddrFrom16(b)
}

func (c *ipCounts) shard(k netip.Addr) *ipShard {
	b := k.As16()
	return &c.shards[maphash.Bytes(c.seed, b[:])%uint64(len(c.shards))]
}

// acquire counts one more peer from a unless a already has the maximum.
func (c *ipCounts) acquire(a netip.Addr) bool {
	k := ipKey(a)
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := sh.n[k]
	if c.max > 0 && n >= c.max {
		return false
	}
	sh.n[k] = n + 1
	return true
}

// add changes a's count by d (a peer moved in or out), forgetting a at zero.
func (c *ipCounts) add(a netip.Addr, d int32) {
	k := ipKey(a)
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := sh.n[k] + d; n > 0 {
		sh.n[k] = n
	} else {
		delete(sh.n, k)
	}
}
