package swarm

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

func newMemoryForTest(t *testing.T, cfg Config) Store {
	m, err := NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemoryConformance(t *testing.T) { StoreSuite(t, newMemoryForTest) }

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{PeerTimeout: 19 * time.Hour},
		{PeerTimeout: time.Millisecond},
		{GCInterval: time.Hour},
		{MaxPeers: -1},
	} {
		if m, err := NewMemory(cfg); err == nil {
			m.Close()
			t.Errorf("NewMemory(%+v) accepted", cfg)
		}
	}
}

// checkTable verifies the table's invariants: every record is indexed exactly once, at a
// position reachable from its home, and seeders precede leechers.
func checkTable(t *testing.T, m *Memory, tb *table, model map[bittorrent.PeerID]bool) {
	t.Helper()
	if tb.n != len(model) {
		t.Fatalf("table holds %d records, model %d", tb.n, len(model))
	}
	used := 0
	for _, v := range tb.index {
		if v != 0 {
			used++
		}
	}
	if used != tb.n {
		t.Fatalf("index holds %d slots for %d records", used, tb.n)
	}
	for r := 0; r < tb.n; r++ {
		id := tb.id(tb.rec(r))
		seeder, ok := model[*id]
		if !ok {
			t.Fatalf("record %d holds unknown peer %v", r, id)
		}
		if seeder != (r < tb.nSeed) {
			t.Fatalf("record %d (seeder=%v) on the wrong side of nSeed=%d", r, seeder, tb.nSeed)
		}
		pos, found := tb.lookup(id, hashID(m.seed, id))
		if !found || int(tb.index[pos]&slotMask) != r+1 {
			t.Fatalf("record %d not found through the index", r)
		}
	}
}

// TestMemoryRandomOps drives one torrent with random announces, stops and expiries and checks
// the table against a map after every step.
func TestMemoryRandomOps(t *testing.T) {
	clk := NewFakeClock(time.Unix(1_800_000_000, 0))
	m, err := NewMemory(Config{PeerTimeout: 10 * time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ih := SuiteInfoHash(1)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[bittorrent.PeerID]bool{}
	lastSeen := map[bittorrent.PeerID]time.Time{}
	var out PeerList
	for step := range 20000 {
		i := rng.IntN(400)
		id := SuitePeerID(i)
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881)
		a := &Announce{InfoHash: ih, PeerID: id, Addr: addr, Left: uint64(rng.IntN(2)), NumWant: rng.IntN(60)}
		switch rng.IntN(10) {
		case 0:
			a.Event = Stopped
		case 1:
			clk.Advance(time.Duration(rng.IntN(120)) * time.Second)
			m.Expire()
			for pid, ts := range lastSeen {
				if clk.Now().Sub(ts) > 10*time.Minute {
					delete(model, pid)
					delete(lastSeen, pid)
				}
			}
		}
		out.Reset()
		res, err := m.Announce(a, &out)
		c := res.Counts
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if a.Event == Stopped {
			delete(model, id)
			delete(lastSeen, id)
		} else {
			model[id] = a.Left == 0
			lastSeen[id] = time.Unix(m.now.Load(), 0)
		}
		seeders := 0
		for _, s := range model {
			if s {
				seeders++
			}
		}
		if int(c.Complete) != seeders || int(c.Complete+c.Incomplete) != len(model) {
			t.Fatalf("step %d: counts %+v, model %d peers %d seeders", step, c, len(model), seeders)
		}
		if a.Event != Stopped {
			got := len(out.V4) / 6
			avail := len(model) - 1
			if a.Left == 0 {
				avail = len(model) - seeders
			}
			if want := min(a.NumWant, avail); got != want {
				t.Fatalf("step %d: %d peers, want %d", step, got, want)
			}
		}
		// The store's own sweeper runs concurrently: inspect its tables under the shard lock.
		sh := m.shardOf(&ih)
		sh.mu.Lock()
		if tr := sh.torrents[ih]; tr != nil && tr.v4 != nil {
			checkTable(t, m, tr.v4, model)
		} else if len(model) != 0 {
			t.Fatalf("step %d: table gone with %d peers in the model", step, len(model))
		}
		sh.mu.Unlock()
	}
}

// TestKeyCollisionOffline is the attack on an unkeyed key hash: the attacker computes, offline,
// a key whose 24-bit FNV-1a hash (what the store once compared) equals the victim's, and
// announces it from another address. With a per-process secret in the hash it fails.
func TestKeyCollisionOffline(t *testing.T) {
	fnv24 := func(key []byte) uint32 {
		h := uint32(2166136261)
		for _, b := range key {
			h ^= uint32(b)
			h *= 16777619
		}
		return h & (1<<24 - 1)
	}
	victimKey := []byte("7A3C19E2")
	want := fnv24(victimKey)
	var forged []byte
	for i := uint32(0); i < 1<<28; i++ {
		k := []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}
		if fnv24(k) == want {
			forged = k
			break
		}
	}
	if forged == nil {
		t.Skip("no 4-byte FNV collision found")
	}
	m := newMemoryForTest(t, Config{})
	ih := SuiteInfoHash(1)
	id := SuitePeerID(1)
	var out PeerList
	if _, err := m.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: netip.MustParseAddrPort("10.0.0.1:6881"), Key: victimKey, Left: 1}, &out); err != nil {
		t.Fatal(err)
	}
	_, err := m.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: netip.MustParseAddrPort("10.6.6.6:6881"), Key: forged, Left: 1, Event: Stopped}, &out)
	if !errors.Is(err, ErrPeerIDTaken) {
		t.Fatalf("stop with a forged key %x (FNV-24 collision): err %v, want ErrPeerIDTaken", forged, err)
	}
}
