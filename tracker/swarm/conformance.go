package swarm

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// FakeClock is a settable clock for tests of stores and of code built on them.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock returns a clock showing t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// StoreSuite runs the behaviour every Store must show. A backend's test calls it with a
// constructor; the Config passed in carries the clock (Now) and limits the test needs.
func StoreSuite(t *testing.T, newStore func(t *testing.T, cfg Config) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T, cfg Config) Store)
	}{
		{"PeersNeverSelf", suitePeersNeverSelf},
		{"SeedersGetNoSeeders", suiteSeedersGetNoSeeders},
		{"CompletedOncePerPeer", suiteCompletedOnce},
		{"StoppedRemoves", suiteStopped},
		{"KeyMovesPeer", suiteKeyMoves},
		{"KeylessPeerStays", suiteKeylessStays},
		{"KeyNotGuessable", suiteKeyNotGuessable},
		{"NumWantSubset", suiteNumWant},
		{"Expiry", suiteExpiry},
		{"HiddenUntilRevealed", suiteHidden},
		{"IPv6", suiteIPv6},
		{"WithIDFormat", suiteWithID},
		{"WalkRestore", suiteWalkRestore},
		{"PeersOfOneTorrent", suitePeers},
		{"Limits", suiteLimits},
		{"PeersPerIPLimit", suitePerIPLimit},
		{"TotalPeersLimit", suiteTotalLimit},
		{"DeadTorrentsYieldToNew", suiteDeadYield},
		{"LimitsHoldUnderConcurrency", suiteLimitsConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

// SuiteInfoHash returns a distinct info-hash for test number i.
func SuiteInfoHash(i int) bittorrent.InfoHash {
	var ih bittorrent.InfoHash
	copy(ih[:], fmt.Sprintf("ih-%017d", i))
	return ih
}

// SuitePeerID returns a distinct peer ID for test number i.
func SuitePeerID(i int) bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], fmt.Sprintf("-WS0001-%012d", i))
	return id
}

func suiteAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(1000+i))
}

func announce(t *testing.T, s Store, ih bittorrent.InfoHash, i int, left uint64, ev Event, want int) (Counts, [][]byte) {
	t.Helper()
	var out PeerList
	res, err := s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(i), Addr: suiteAddr(i), Key: []byte{byte(i)}, Left: left, Event: ev, NumWant: want}, &out)
	if err != nil {
		t.Fatalf("announce peer %d: %v", i, err)
	}
	return res.Counts, split(out.V4, 6)
}

func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) >= n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func compact(a netip.AddrPort) string {
	b := putAddr(nil, a.Addr().Unmap(), a.Port())
	return string(b)
}

func clockConfig() (Config, *FakeClock) {
	clk := NewFakeClock(time.Unix(1_800_000_000, 0))
	return Config{PeerTimeout: 30 * time.Minute, Now: clk.Now}, clk
}

func suitePeersNeverSelf(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(1)
	for i := range 10 {
		c, peers := announce(t, s, ih, i, 100, Started, 50)
		if int(c.Incomplete) != i+1 || c.Complete != 0 {
			t.Fatalf("after %d leechers: counts %+v", i+1, c)
		}
		if len(peers) != i {
			t.Fatalf("peer %d got %d peers, want %d", i, len(peers), i)
		}
		seen := map[string]bool{}
		for _, p := range peers {
			if string(p) == compact(suiteAddr(i)) {
				t.Fatalf("peer %d was handed itself", i)
			}
			if seen[string(p)] {
				t.Fatalf("peer %d got a duplicate", i)
			}
			seen[string(p)] = true
		}
	}
}

func suiteSeedersGetNoSeeders(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(2)
	for i := range 5 {
		announce(t, s, ih, i, 0, Started, 0)
	}
	for i := 5; i < 8; i++ {
		announce(t, s, ih, i, 1, Started, 0)
	}
	c, peers := announce(t, s, ih, 0, 0, None, 50)
	if c.Complete != 5 || c.Incomplete != 3 {
		t.Fatalf("counts %+v, want 5 seeders 3 leechers", c)
	}
	if len(peers) != 3 {
		t.Fatalf("seeder got %d peers, want the 3 leechers", len(peers))
	}
	for _, p := range peers {
		ok := false
		for i := 5; i < 8; i++ {
			ok = ok || string(p) == compact(suiteAddr(i))
		}
		if !ok {
			t.Fatalf("seeder was handed a non-leecher %x", p)
		}
	}
	_, peers = announce(t, s, ih, 5, 1, None, 50)
	if len(peers) != 7 {
		t.Fatalf("leecher got %d peers, want 7", len(peers))
	}
}

func suiteCompletedOnce(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(3)
	announce(t, s, ih, 1, 10, Started, 0)
	c, _ := announce(t, s, ih, 1, 0, Completed, 0)
	if c.Downloaded != 1 || c.Complete != 1 || c.Incomplete != 0 {
		t.Fatalf("after completed: %+v", c)
	}
	c, _ = announce(t, s, ih, 1, 0, Completed, 0)
	if c.Downloaded != 1 {
		t.Fatalf("second completed counted: %+v", c)
	}
	// left>0 -> 0 without the event counts too, once.
	announce(t, s, ih, 2, 10, Started, 0)
	c, _ = announce(t, s, ih, 2, 0, None, 0)
	if c.Downloaded != 2 {
		t.Fatalf("left>0->0 not counted: %+v", c)
	}
	announce(t, s, ih, 2, 5, None, 0)
	c, _ = announce(t, s, ih, 2, 0, Completed, 0)
	if c.Downloaded != 2 || c.Complete != 2 {
		t.Fatalf("re-completion counted again: %+v", c)
	}
	// A peer that starts as a seeder never completed here.
	c, _ = announce(t, s, ih, 3, 0, Started, 0)
	if c.Downloaded != 2 || c.Complete != 3 {
		t.Fatalf("seeder start counted: %+v", c)
	}
	if sc, ok := s.Scrape(ih); !ok || sc != c {
		t.Fatalf("scrape %+v %v, want %+v", sc, ok, c)
	}
}

func suiteStopped(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(4)
	announce(t, s, ih, 1, 10, Started, 0)
	announce(t, s, ih, 2, 0, Started, 0)
	c, _ := announce(t, s, ih, 1, 10, Stopped, 0)
	if c.Incomplete != 0 || c.Complete != 1 {
		t.Fatalf("after stop: %+v", c)
	}
	c, _ = announce(t, s, ih, 2, 0, Stopped, 0)
	if c.Complete != 0 {
		t.Fatalf("after second stop: %+v", c)
	}
	if _, ok := s.Scrape(ih); ok {
		// Stores may keep an empty torrent until the next sweep; after it, it is gone.
		s.Expire()
		if _, ok := s.Scrape(ih); ok {
			t.Fatal("empty torrent kept after expiry sweep without KeepDead")
		}
	}
	// Stopping an unknown peer or torrent is not an error and creates nothing.
	c, _ = announce(t, s, SuiteInfoHash(44), 9, 0, Stopped, 0)
	if c != (Counts{}) {
		t.Fatalf("stop of unknown torrent: %+v", c)
	}
	if _, ok := s.Scrape(SuiteInfoHash(44)); ok {
		t.Fatal("stopped announce created a torrent")
	}
}

func suiteKeyMoves(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(5)
	id := SuitePeerID(1)
	first := netip.MustParseAddrPort("10.1.1.1:5000")
	moved := netip.MustParseAddrPort("10.2.2.2:5001")
	var out PeerList
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: first, Key: []byte("k\x00y"), Left: 1, Event: Started}, &out); err != nil {
		t.Fatal(err)
	}
	// Another key cannot take the peer ID over from another address.
	_, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: moved, Key: []byte("evil"), Left: 1}, &out)
	if !errors.Is(err, ErrPeerIDTaken) {
		t.Fatalf("takeover with another key: err %v, want ErrPeerIDTaken", err)
	}
	_, err = s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: moved, Key: []byte("evil"), Left: 1, Event: Stopped}, &out)
	if !errors.Is(err, ErrPeerIDTaken) {
		t.Fatalf("stop with another key from another address: err %v", err)
	}
	_, peers := announce(t, s, ih, 2, 1, Started, 50)
	if len(peers) != 1 || string(peers[0]) != compact(first) {
		t.Fatalf("after refused takeover, peers %x, want %v", peers, first)
	}
	// The same key moves it.
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: moved, Key: []byte("k\x00y"), Left: 1}, &out); err != nil {
		t.Fatalf("move with the same key: %v", err)
	}
	c, peers := announce(t, s, ih, 2, 1, None, 50)
	if len(peers) != 1 || string(peers[0]) != compact(moved) || c.Incomplete != 2 {
		t.Fatalf("after move, peers %x counts %+v, want %v", peers, c, moved)
	}
}

// suiteKeylessStays: a peer that sent no key cannot be moved, stopped or completed from
// another IP address by someone who learnt its peer ID; it may change port on its own IP.
func suiteKeylessStays(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(50)
	id := SuitePeerID(1)
	home := netip.MustParseAddrPort("10.1.1.1:5000")
	var out PeerList
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: home, Left: 1, Event: Started}, &out); err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddrPort("10.9.9.9:5000")
	for _, tc := range []struct {
		key  string
		ev   Event
		left uint64
	}{
		{"", None, 1}, {"", Stopped, 1}, {"", Completed, 0}, {"", Started, 0},
		{"anykey", None, 1}, {"anykey", Stopped, 1}, {"anykey", Completed, 0},
	} {
		_, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: other, Key: []byte(tc.key), Left: tc.left, Event: tc.ev}, &out)
		if !errors.Is(err, ErrIPChanged) {
			t.Fatalf("keyless peer, %v with key %q from another IP: err %v, want ErrIPChanged", tc.ev, tc.key, err)
		}
	}
	c, peers := announce(t, s, ih, 2, 1, Started, 50)
	if len(peers) != 1 || string(peers[0]) != compact(home) || c.Incomplete != 2 || c.Complete != 0 || c.Downloaded != 0 {
		t.Fatalf("after refused takeovers: peers %x counts %+v, want the victim at %v as a leecher", peers, c, home)
	}
	// A new port on the same IP is the same host: allowed, as bttrack did.
	newPort := netip.MustParseAddrPort("10.1.1.1:5001")
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: newPort, Left: 1}, &out); err != nil {
		t.Fatalf("keyless peer changing port: %v", err)
	}
	if _, peers := announce(t, s, ih, 2, 1, None, 50); len(peers) != 1 || string(peers[0]) != compact(newPort) {
		t.Fatalf("after port change, peers %x, want %v", peers, newPort)
	}
	// A keyed peer that later announces without a key from another IP is refused as well.
	kid := SuitePeerID(3)
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: kid, Addr: home, Key: []byte("secret"), Left: 1}, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: kid, Addr: other, Left: 1, Event: Stopped}, &out); !errors.Is(err, ErrPeerIDTaken) {
		t.Fatalf("keyed peer stopped without key from another IP: err %v, want ErrPeerIDTaken", err)
	}
}

// suiteKeyNotGuessable: keys are not compared through a small or fixed hash. Many wrong keys
// from another address all fail (a 24-bit unkeyed hash lets some collide, and keys that
// differ only past a short prefix must not match either).
func suiteKeyNotGuessable(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(51)
	id := SuitePeerID(1)
	var out PeerList
	key := []byte("0123456789abcdef")
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: netip.MustParseAddrPort("10.1.1.1:5000"), Key: key, Left: 1}, &out); err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddrPort("10.9.9.9:5000")
	guess := make([]byte, 4)
	for i := range 1 << 12 {
		guess[0], guess[1], guess[2], guess[3] = byte(i), byte(i>>8), byte(i>>16), 1
		if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: other, Key: guess, Left: 1}, &out); !errors.Is(err, ErrPeerIDTaken) {
			t.Fatalf("guess %x: err %v, want ErrPeerIDTaken", guess, err)
		}
	}
	near := append([]byte(nil), key...)
	near[len(near)-1] ^= 1
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: id, Addr: other, Key: near, Left: 1}, &out); !errors.Is(err, ErrPeerIDTaken) {
		t.Fatalf("near key: err %v, want ErrPeerIDTaken", err)
	}
}

func suiteNumWant(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(6)
	const n = 300
	for i := range n {
		announce(t, s, ih, i, uint64(i%2), Started, 0)
	}
	union := map[string]bool{}
	for range 40 {
		_, peers := announce(t, s, ih, 7, 1, None, 50)
		if len(peers) != 50 {
			t.Fatalf("got %d peers, want 50", len(peers))
		}
		seen := map[string]bool{}
		for _, p := range peers {
			if seen[string(p)] {
				t.Fatal("duplicate peer in one reply")
			}
			if string(p) == compact(suiteAddr(7)) {
				t.Fatal("handed itself")
			}
			seen[string(p)] = true
			union[string(p)] = true
		}
	}
	// 40 random draws of 50 out of 299 should reach nearly everyone; a fixed window would not.
	if len(union) < n/2 {
		t.Fatalf("40 draws reached only %d of %d peers: selection is not random", len(union), n-1)
	}
	_, peers := announce(t, s, ih, 7, 1, None, 0)
	if len(peers) != 0 {
		t.Fatalf("numwant 0 returned %d peers", len(peers))
	}
}

func suiteExpiry(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, clk := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(7)
	announce(t, s, ih, 1, 1, Started, 0)
	announce(t, s, ih, 2, 0, Started, 0)
	clk.Advance(20 * time.Minute)
	s.Expire()
	announce(t, s, ih, 2, 0, None, 0) // peer 2 stays fresh
	clk.Advance(15 * time.Minute)
	s.Expire()
	c, ok := s.Scrape(ih)
	if !ok || c.Incomplete != 0 || c.Complete != 1 {
		t.Fatalf("after 35 min: %+v %v, want peer 1 expired, peer 2 kept", c, ok)
	}
	clk.Advance(31 * time.Minute)
	s.Expire()
	if c, ok := s.Scrape(ih); ok {
		t.Fatalf("torrent with no peers and no completions kept: %+v", c)
	}
}

func suiteHidden(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(8)
	var out PeerList
	a := &Announce{InfoHash: ih, PeerID: SuitePeerID(1), Addr: suiteAddr(1), Left: 1, Event: Started, Hidden: true}
	res, err := s.Announce(a, &out)
	if err != nil || !res.Hidden {
		t.Fatalf("hidden announce: %+v, %v", res, err)
	}
	if res, _ = s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(1), Addr: suiteAddr(1), Left: 1}, &out); !res.Hidden {
		t.Fatal("re-announce of a hidden peer does not report it hidden")
	}
	c, peers := announce(t, s, ih, 2, 1, Started, 50)
	if len(peers) != 0 || c.Incomplete != 2 {
		t.Fatalf("hidden peer handed out (%d peers, counts %+v)", len(peers), c)
	}
	s.Reveal(ih, SuitePeerID(1), suiteAddr(2)) // wrong address: no effect
	if _, peers = announce(t, s, ih, 2, 1, None, 50); len(peers) != 0 {
		t.Fatal("reveal with another address revealed the peer")
	}
	s.Reveal(ih, SuitePeerID(1), suiteAddr(1))
	if _, peers = announce(t, s, ih, 2, 1, None, 50); len(peers) != 1 {
		t.Fatalf("revealed peer not handed out: %d peers", len(peers))
	}
}

func suiteIPv6(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(9)
	v6 := netip.MustParseAddrPort("[2001:db8::1]:6881")
	mapped := netip.MustParseAddrPort("[::ffff:10.9.9.9]:6882")
	var out PeerList
	for i, a := range []netip.AddrPort{v6, mapped} {
		if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(i), Addr: a, Left: 1, Event: Started}, &out); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	res, err := s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(5), Addr: suiteAddr(5), Left: 1, NumWant: 50}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Incomplete != 3 {
		t.Fatalf("counts %+v, want 3 leechers", res.Counts)
	}
	if len(out.V6) != 18 || string(out.V6) != compact(v6) {
		t.Fatalf("peers6 %x, want %v", out.V6, v6)
	}
	if len(out.V4) != 6 || string(out.V4) != compact(netip.MustParseAddrPort("10.9.9.9:6882")) {
		t.Fatalf("peers %x, want the v4-mapped peer as IPv4", out.V4)
	}
}

func suiteWithID(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(10)
	announce(t, s, ih, 1, 1, Started, 0)
	out := PeerList{Format: WithID}
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(2), Addr: suiteAddr(2), Left: 1, NumWant: 5}, &out); err != nil {
		t.Fatal(err)
	}
	id := SuitePeerID(1)
	if want := compact(suiteAddr(1)) + string(id[:]); string(out.V4) != want {
		t.Fatalf("WithID record %x, want %x", out.V4, want)
	}
}

func suiteWalkRestore(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, clk := clockConfig()
	s := newStore(t, cfg)
	ih := SuiteInfoHash(11)
	announce(t, s, ih, 1, 1, Started, 0)
	announce(t, s, ih, 2, 0, Completed, 0)
	var out PeerList
	v6 := netip.MustParseAddrPort("[2001:db8::7]:7000")
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(3), Addr: v6, Left: 0, Key: []byte("kk")}, &out); err != nil {
		t.Fatal(err)
	}
	type saved struct {
		ih    bittorrent.InfoHash
		down  uint32
		peers []PeerRecord
	}
	var all []saved
	s.Walk(func(ih bittorrent.InfoHash, down uint32, peers []PeerRecord) bool {
		all = append(all, saved{ih, down, append([]PeerRecord(nil), peers...)})
		return true
	})
	if len(all) != 1 || len(all[0].peers) != 3 || all[0].down != 1 {
		t.Fatalf("walk: %+v", all)
	}
	for _, p := range all[0].peers {
		if d := clk.Now().Sub(p.LastSeen); d < 0 || d > time.Second {
			t.Fatalf("last seen %v, now %v", p.LastSeen, clk.Now())
		}
	}
	cfg2, _ := clockConfig()
	s2 := newStore(t, cfg2)
	if err := s2.Restore(all[0].ih, all[0].down, all[0].peers); err != nil {
		t.Fatal(err)
	}
	want, _ := s.Scrape(ih)
	if got, ok := s2.Scrape(ih); !ok || got != want {
		t.Fatalf("restored counts %+v, want %+v", got, want)
	}
	// A restored peer has no key until it announces from its own address: it cannot be moved
	// (not even with its old key), and its first announce from home teaches the key again.
	// The restored completion flag still holds.
	for _, key := range []string{"zz", "kk", ""} {
		_, err := s2.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(3), Addr: netip.MustParseAddrPort("[2001:db8::8]:7000"), Key: []byte(key)}, &out)
		if !errors.Is(err, ErrIPChanged) {
			t.Fatalf("restored peer moved with key %q: err %v, want ErrIPChanged", key, err)
		}
	}
	if _, err := s2.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(3), Addr: v6, Key: []byte("kk")}, &out); err != nil {
		t.Fatalf("restored peer from its own address: %v", err)
	}
	moved := netip.MustParseAddrPort("[2001:db8::8]:7000")
	if _, err := s2.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(3), Addr: moved, Key: []byte("zz")}, &out); !errors.Is(err, ErrPeerIDTaken) {
		t.Fatalf("re-keyed restored peer taken over: %v", err)
	}
	if _, err := s2.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(3), Addr: moved, Key: []byte("kk")}, &out); err != nil {
		t.Fatalf("re-keyed restored peer moving with its key: %v", err)
	}
	c, _ := announce(t, s2, ih, 2, 0, Completed, 0)
	if c.Downloaded != 1 {
		t.Fatalf("restored completion counted again: %+v", c)
	}
	// Peers older than the timeout are not restored.
	old := all[0].peers[0]
	old.ID = SuitePeerID(99)
	old.LastSeen = clk.Now().Add(-time.Hour)
	if err := s2.Restore(ih, 0, []PeerRecord{old}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Scrape(ih); got != c {
		t.Fatalf("expired record restored: %+v", got)
	}
}

func suitePeers(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, clk := clockConfig()
	s := newStore(t, cfg)
	ih, other := SuiteInfoHash(12), SuiteInfoHash(13)
	announce(t, s, ih, 1, 1, Started, 0)
	announce(t, s, ih, 2, 0, Completed, 0)
	var out PeerList
	v6 := netip.MustParseAddrPort("[2001:db8::9]:9000")
	if _, err := s.Announce(&Announce{InfoHash: ih, PeerID: SuitePeerID(3), Addr: v6, Left: 1, Key: []byte("kk"), Hidden: true}, &out); err != nil {
		t.Fatal(err)
	}
	announce(t, s, other, 4, 1, Started, 0)
	if s.Peers(SuiteInfoHash(14), func(uint32, []PeerRecord) { t.Error("fn called for an unknown torrent") }) {
		t.Fatal("Peers reports an unknown torrent")
	}
	// Peers gives what Walk gives for the same torrent.
	var walked []PeerRecord
	var walkedDown uint32
	s.Walk(func(h bittorrent.InfoHash, down uint32, peers []PeerRecord) bool {
		if h == ih {
			walked, walkedDown = append([]PeerRecord(nil), peers...), down
		}
		return true
	})
	var got []PeerRecord
	var down uint32
	calls := 0
	if !s.Peers(ih, func(d uint32, peers []PeerRecord) {
		calls++
		got, down = append([]PeerRecord(nil), peers...), d
	}) || calls != 1 {
		t.Fatalf("Peers on a known torrent: %d calls", calls)
	}
	if down != 1 || down != walkedDown || len(got) != 3 {
		t.Fatalf("Peers: downloaded %d (walk %d), %d peers: %+v", down, walkedDown, len(got), got)
	}
	byID := map[bittorrent.PeerID]PeerRecord{}
	for _, p := range walked {
		byID[p.ID] = p
	}
	for _, p := range got {
		w, ok := byID[p.ID]
		if !ok || w.Addr != p.Addr || w.Seeder != p.Seeder || w.Hidden != p.Hidden || w.Counted != p.Counted ||
			!w.LastSeen.Equal(p.LastSeen) {
			t.Errorf("Peers record %+v, Walk record %+v", p, w)
		}
		if d := clk.Now().Sub(p.LastSeen); d < 0 || d > time.Second {
			t.Errorf("last seen %v, now %v", p.LastSeen, clk.Now())
		}
		switch p.ID {
		case SuitePeerID(2):
			if !p.Seeder || !p.Counted {
				t.Errorf("completed peer %+v: want seeder, counted", p)
			}
		case SuitePeerID(3):
			if p.Addr != v6 || !p.Hidden || p.Seeder {
				t.Errorf("hidden IPv6 leecher %+v", p)
			}
		}
	}
	// Ages survive the clock moving on.
	clk.Advance(90 * time.Second)
	s.Expire()
	s.Peers(ih, func(_ uint32, peers []PeerRecord) {
		for _, p := range peers {
			if d := clk.Now().Sub(p.LastSeen); d < 89*time.Second || d > 91*time.Second {
				t.Errorf("after 90 s, last seen %v before now", d)
			}
		}
	})
}

func suiteLimits(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	cfg.MaxTorrents = 2
	cfg.MaxPeers = 3
	s := newStore(t, cfg)
	var out PeerList
	for i := range 3 {
		_, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(100 + i), PeerID: SuitePeerID(1), Addr: suiteAddr(1), Left: 1}, &out)
		if i < 2 && err != nil {
			t.Fatalf("torrent %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, ErrTooManyTorrents) {
			t.Fatalf("third torrent: err %v, want ErrTooManyTorrents", err)
		}
	}
	for i := range 4 {
		_, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(100), PeerID: SuitePeerID(10 + i), Addr: suiteAddr(10 + i), Left: 1}, &out)
		if i < 2 && err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		if i >= 2 && !errors.Is(err, ErrTooManyPeers) {
			t.Fatalf("peer %d beyond the cap: err %v, want ErrTooManyPeers", i, err)
		}
	}
	// A known peer still re-announces when the torrent is full.
	if _, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(100), PeerID: SuitePeerID(1), Addr: suiteAddr(1), Left: 0}, &out); err != nil {
		t.Fatalf("re-announce in a full torrent: %v", err)
	}
	if tot := s.Totals(); tot.Torrents != 2 || tot.Seeders+tot.Leechers != 4 {
		t.Fatalf("totals %+v", tot)
	}
}

// suitePerIPLimit: one IPv4 address, or one IPv6 /64, registers at most MaxPeersPerIP peers
// over all torrents; a refused peer creates no torrent; stopping, expiring and moving away
// give its slot back.
func suitePerIPLimit(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, clk := clockConfig()
	cfg.MaxPeersPerIP = 3
	s := newStore(t, cfg)
	var out PeerList
	ann := func(ih int, id int, addr string, ev Event) error {
		_, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(ih), PeerID: SuitePeerID(id), Addr: netip.MustParseAddrPort(addr),
			Key: []byte{byte(id), 1}, Left: 1, Event: ev}, &out)
		return err
	}
	for _, tc := range []struct{ a, b, other string }{
		{"10.0.0.1:1000", "10.0.0.1:2000", "10.0.0.2:1000"},
		{"[2001:db8::1]:1000", "[2001:db8::ffff:2]:2000", "[2001:db8:0:1::1]:1000"}, // one /64, then the next
	} {
		base := 1000
		if tc.a[0] == '[' {
			base = 2000
		}
		for i := range 3 {
			if err := ann(base+i, base+i, tc.a, Started); err != nil {
				t.Fatalf("%s: peer %d: %v", tc.a, i, err)
			}
		}
		for _, addr := range []string{tc.a, tc.b} {
			if err := ann(base+10, base+10, addr, Started); !errors.Is(err, ErrTooManyPeersFromIP) {
				t.Fatalf("%s: peer beyond the per-IP limit: err %v, want ErrTooManyPeersFromIP", addr, err)
			}
			if err := ann(base, base+11, addr, Started); !errors.Is(err, ErrTooManyPeersFromIP) {
				t.Fatalf("%s: new peer in a known torrent beyond the per-IP limit: err %v", addr, err)
			}
		}
		if _, ok := s.Scrape(SuiteInfoHash(base + 10)); ok {
			t.Fatalf("%s: a refused peer created a torrent", tc.a)
		}
		if err := ann(base+10, base+12, tc.other, Started); err != nil {
			t.Fatalf("%s: another address refused: %v", tc.other, err)
		}
		// Known peers re-announce; a stop frees a slot.
		if err := ann(base, base, tc.a, None); err != nil {
			t.Fatalf("%s: re-announce at the limit: %v", tc.a, err)
		}
		if err := ann(base, base, tc.a, Stopped); err != nil {
			t.Fatal(err)
		}
		if err := ann(base+10, base+10, tc.b, Started); err != nil {
			t.Fatalf("%s: after a stop: %v", tc.b, err)
		}
	}
	// A peer that moves away (with its key) frees its slot at the old address.
	if _, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(1001), PeerID: SuitePeerID(1001), Addr: netip.MustParseAddrPort("10.0.0.9:1000"),
		Key: []byte{byte(1001 % 256), 1}, Left: 1}, &out); err != nil {
		t.Fatalf("move: %v", err)
	}
	if err := ann(1020, 1020, "10.0.0.1:1000", Started); err != nil {
		t.Fatalf("after a peer moved away: %v", err)
	}
	// Expiry frees every slot.
	clk.Advance(cfg.PeerTimeout + time.Minute)
	s.Expire()
	for i := range 3 {
		if err := ann(1100+i, 1100+i, "10.0.0.1:1000", Started); err != nil {
			t.Fatalf("after expiry, peer %d: %v", i, err)
		}
	}
}

// suiteTotalLimit: the store holds at most MaxTotalPeers peers over all torrents.
func suiteTotalLimit(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	cfg.MaxTotalPeers = 5
	s := newStore(t, cfg)
	for i := range 5 {
		announce(t, s, SuiteInfoHash(i%2), i, 1, Started, 0)
	}
	var out PeerList
	_, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(9), PeerID: SuitePeerID(9), Addr: suiteAddr(9), Left: 1}, &out)
	if !errors.Is(err, ErrTrackerPeersFull) {
		t.Fatalf("peer beyond the total: err %v, want ErrTrackerPeersFull", err)
	}
	if _, ok := s.Scrape(SuiteInfoHash(9)); ok {
		t.Fatal("a refused peer created a torrent")
	}
	announce(t, s, SuiteInfoHash(0), 0, 0, None, 0) // known peers still announce
	announce(t, s, SuiteInfoHash(0), 0, 0, Stopped, 0)
	announce(t, s, SuiteInfoHash(9), 9, 1, Started, 0)
}

// suiteDeadYield: torrents kept only for their completions (complete, then stop: anyone can
// make them) do not lock new torrents out of a full store; torrents with peers do.
func suiteDeadYield(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	cfg.MaxTorrents = 2
	cfg.Shards = 1 // the store may look for a dead torrent near the new one only
	s := newStore(t, cfg)
	for i := range 2 {
		announce(t, s, SuiteInfoHash(i), i, 0, Completed, 0)
		announce(t, s, SuiteInfoHash(i), i, 0, Stopped, 0)
	}
	for i := range 2 {
		if _, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(10 + i), PeerID: SuitePeerID(10 + i), Addr: suiteAddr(10 + i), Left: 1}, new(PeerList)); err != nil {
			t.Fatalf("new torrent %d in a store full of dead torrents: %v", i, err)
		}
	}
	_, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(20), PeerID: SuitePeerID(20), Addr: suiteAddr(20), Left: 1}, new(PeerList))
	if !errors.Is(err, ErrTooManyTorrents) {
		t.Fatalf("new torrent in a store full of live torrents: err %v, want ErrTooManyTorrents", err)
	}
}

// suiteLimitsConcurrent: announces racing for the last slots never overshoot the total and
// per-IP limits, nor lose a slot.
func suiteLimitsConcurrent(t *testing.T, newStore func(*testing.T, Config) Store) {
	cfg, _ := clockConfig()
	cfg.MaxTotalPeers = 300
	cfg.MaxPeersPerIP = 100
	s := newStore(t, cfg)
	const workers, each = 8, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string]int{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out PeerList
			ip := netip.AddrFrom4([4]byte{10, 7, 0, byte(w % 4)}) // two workers an address
			for i := range each {
				n := w*each + i
				_, err := s.Announce(&Announce{InfoHash: SuiteInfoHash(n % 50), PeerID: SuitePeerID(n), Addr: netip.AddrPortFrom(ip, uint16(1000+n)), Left: 1}, &out)
				if err == nil {
					mu.Lock()
					accepted[ip.String()]++
					mu.Unlock()
				} else if !errors.Is(err, ErrTooManyPeersFromIP) && !errors.Is(err, ErrTrackerPeersFull) {
					t.Errorf("announce %d: %v", n, err)
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for ip, n := range accepted {
		if n > cfg.MaxPeersPerIP {
			t.Errorf("%s: %d peers accepted, limit %d", ip, n, cfg.MaxPeersPerIP)
		}
		total += n
	}
	tot := s.Totals()
	if total != cfg.MaxTotalPeers || tot.Seeders+tot.Leechers != cfg.MaxTotalPeers {
		t.Errorf("%d accepted, store holds %d, want exactly the total limit %d", total, tot.Seeders+tot.Leechers, cfg.MaxTotalPeers)
	}
}
