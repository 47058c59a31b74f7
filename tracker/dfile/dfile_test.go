package dfile

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/anacrolix/torrent/bencode"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// clock is swarm's settable fake clock, for stores and the code built on them.
type clock struct{ *swarm.FakeClock }

func newClock() *clock { return &clock{swarm.NewFakeClock(time.Unix(1_800_000_000, 0))} }

func (c *clock) Add(d time.Duration) { c.Advance(d) }
func (c *clock) cfg(keepDead bool) swarm.Config {
	return swarm.Config{Now: c.Now, KeepDead: keepDead, Shards: 8}
}

func newStore(t testing.TB, cfg swarm.Config) *swarm.Memory {
	t.Helper()
	m, err := swarm.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func ih(i int) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	copy(h[:], fmt.Sprintf("torrent-%012d", i))
	return h
}

func pid(s string) bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], s)
	return id
}

func announce(t testing.TB, s swarm.Store, h bittorrent.InfoHash, id, addr, key string, left uint64, ev swarm.Event) error {
	t.Helper()
	var out swarm.PeerList
	_, err := s.Announce(&swarm.Announce{
		InfoHash: h, PeerID: pid(id), Addr: netip.MustParseAddrPort(addr), Key: []byte(key), Left: left, Event: ev,
	}, &out)
	return err
}

type walked struct {
	ih         bittorrent.InfoHash
	downloaded uint32
	peers      []swarm.PeerRecord
}

func walk(s swarm.Store) []walked {
	var out []walked
	s.Walk(func(h bittorrent.InfoHash, d uint32, peers []swarm.PeerRecord) bool {
		p := slices.Clone(peers)
		slices.SortFunc(p, func(a, b swarm.PeerRecord) int { return bytes.Compare(a.ID[:], b.ID[:]) })
		out = append(out, walked{h, d, p})
		return true
	})
	slices.SortFunc(out, func(a, b walked) int { return bytes.Compare(a.ih[:], b.ih[:]) })
	return out
}

func TestRoundTrip(t *testing.T) {
	clk := newClock()
	a := newStore(t, clk.cfg(true))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(announce(t, a, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:6881", "k1", 100, swarm.Started))
	must(announce(t, a, ih(1), "-LT2080-bbbbbbbbbbbb", "[2001:db8::1]:51413", "k2", 0, swarm.Started))
	must(announce(t, a, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:6881", "k1", 0, swarm.Completed)) // counted
	clk.Add(10 * time.Minute)
	a.Expire() // refresh the store's coarse clock
	must(announce(t, a, ih(2), "\x00\x01binary-peer-id\xff\xfe\x00", "192.168.1.2:1", "", 5, swarm.Started))
	var hidden swarm.PeerList
	if _, err := a.Announce(&swarm.Announce{InfoHash: ih(2), PeerID: pid("-qB4520-hidden-peer!"), Addr: netip.MustParseAddrPort("10.9.9.9:9999"), Left: 1, Hidden: true}, &hidden); err != nil {
		t.Fatal(err)
	}
	must(announce(t, a, ih(3), "-TR3000-gonegonegone", "10.0.0.3:6881", "", 0, swarm.Completed))
	must(announce(t, a, ih(3), "-TR3000-gonegonegone", "10.0.0.3:6881", "", 0, swarm.Stopped)) // dead, 1 completion

	path := filepath.Join(t.TempDir(), "state")
	must(Save(path, a))
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v", err, st.Mode())
	}

	b := newStore(t, clk.cfg(true))
	stats, err := Load(path, b)
	must(err)
	if want := (Stats{Torrents: 3, Peers: 4}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	if got, want := walk(b), walk(a); !equalWalk(got, want) {
		t.Errorf("restored state differs:\n got %+v\nwant %+v", got, want)
	}
	if got, want := b.Totals(), a.Totals(); got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}

	// No key is saved (key hashes are per process): a restored peer cannot move, whatever
	// key is sent, until it announces from its own address, which teaches its key again.
	if err := announce(t, b, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.99:6881", "k1", 0, swarm.None); !errors.Is(err, swarm.ErrIPChanged) {
		t.Errorf("restored peer moved before re-announcing: %v, want ErrIPChanged", err)
	}
	must(announce(t, b, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:6881", "k1", 0, swarm.None))
	must(announce(t, b, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.99:6881", "k1", 0, swarm.None))
	if err := announce(t, b, ih(1), "-LT2080-bbbbbbbbbbbb", "[2001:db8::2]:51413", "other", 0, swarm.None); !errors.Is(err, swarm.ErrIPChanged) {
		t.Errorf("announce from another address: %v, want ErrIPChanged", err)
	}
	// Counted survives: completing again does not count twice.
	c0, _ := b.Scrape(ih(1))
	must(announce(t, b, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.99:6881", "k1", 0, swarm.Completed))
	if c1, _ := b.Scrape(ih(1)); c1.Downloaded != c0.Downloaded {
		t.Errorf("completion counted again after restore: %d -> %d", c0.Downloaded, c1.Downloaded)
	}

	// bttrack's reading: the file decodes into its layout with its key types.
	var generic map[string]interface{}
	data, _ := os.ReadFile(path)
	must(bencode.Unmarshal(data, &generic))
	// Canonical bencoding (every dictionary's keys sorted, as mainline's bdecode demands):
	// re-encoding the decoded file gives the same bytes.
	if again, err := bencode.Marshal(generic); err != nil || !bytes.Equal(again, data) {
		t.Errorf("state file is not canonical bencode (%v):\n file %q\nsorted %q", err, data, again)
	}
	peers := generic["peers"].(map[string]interface{})
	p := peers[ihs(1)].(map[string]interface{})["-TR3000-aaaaaaaaaaaa"].(map[string]interface{})
	if p["ip"] != "10.0.0.1" || p["port"] != int64(6881) || p["left"] != int64(0) || p["nat"] != int64(0) {
		t.Errorf("peer entry %v lacks bttrack's ip/port/left/nat", p)
	}
	for _, k := range []string{"key", "key hash"} {
		if _, ok := p[k]; ok {
			t.Errorf("peer entry %v has a %q: keys are not saved", p, k)
		}
	}
	// bttrack hands out only nat=0 peers and cannot pack IPv6: those and hidden peers get nat=1.
	p6 := peers[ihs(1)].(map[string]interface{})["-LT2080-bbbbbbbbbbbb"].(map[string]interface{})
	ph := peers[ihs(2)].(map[string]interface{})["-qB4520-hidden-peer!"].(map[string]interface{})
	if p6["nat"] != int64(1) || ph["nat"] != int64(1) || ph["hidden"] != int64(1) || p6["hidden"] != int64(0) {
		t.Errorf("IPv6 peer %v, hidden peer %v: want nat=1, hidden only on the hidden one", p6, ph)
	}
	if c := generic["completed"].(map[string]interface{}); c[ihs(3)] != int64(1) || c[ihs(2)] != int64(0) || len(c) != 3 {
		t.Errorf("completed = %v", c)
	}
}

func equalWalk(a, b []walked) bool {
	return slices.EqualFunc(a, b, func(x, y walked) bool {
		return x.ih == y.ih && x.downloaded == y.downloaded && slices.EqualFunc(x.peers, y.peers, func(p, q swarm.PeerRecord) bool {
			return p.ID == q.ID && p.Addr == q.Addr && p.Seeder == q.Seeder && p.Hidden == q.Hidden &&
				p.Counted == q.Counted && p.LastSeen.Equal(q.LastSeen)
		})
	})
}

func TestExpiredPeersNotRestored(t *testing.T) {
	clk := newClock()
	a := newStore(t, clk.cfg(false))
	if err := announce(t, a, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:6881", "", 1, swarm.Started); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state")
	if err := Save(path, a); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour) // past the default 45 min timeout
	b := newStore(t, clk.cfg(false))
	stats, err := Load(path, b)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Peers != 1 || b.Totals().Leechers != 0 || b.Totals().Torrents != 0 {
		t.Errorf("stats %+v, totals %+v: the expired peer should be read and dropped", stats, b.Totals())
	}
}

// bttrackFile is a state file as bttrack 3.4.2 writes it: no keys of ours, its own top-level
// extras, and a later bttrack's "nat" flag.
func bttrackFile(t *testing.T) []byte {
	t.Helper()
	peer := func(ip string, port, left int) map[string]interface{} {
		return map[string]interface{}{"ip": ip, "port": port, "left": left}
	}
	natted := peer("10.0.0.7", 6887, 10)
	natted["nat"] = 1
	// What bttrack writes for an announce with key= and ip=: the raw key and "given ip".
	keyed := peer("10.0.0.2", 6882, 1000)
	keyed["key"] = "\x00\xffraw key"
	keyed["given ip"] = "10.9.9.9"
	keyed["nat"] = 0
	data, err := bencode.Marshal(map[string]interface{}{
		"peers": map[string]interface{}{
			ihs(1): map[string]interface{}{
				"M3-4-2--aaaaaaaaaaaa": peer("10.0.0.1", 6881, 0),
				"M3-4-2--bbbbbbbbbbbb": keyed,
				"M3-4-2--natnatnatnat": natted,
				"short":                peer("10.0.0.3", 6883, 0),
				"M3-4-2--badipbadipba": peer("not-an-ip", 6884, 0),
				"M3-4-2--badportbadpo": peer("10.0.0.5", 0, 0),
			},
			"not-20-bytes": map[string]interface{}{},
		},
		"completed":         map[string]interface{}{ihs(1): 7, ihs(2): 3},
		"allowed":           map[string]interface{}{},
		"allowed_dir_files": map[string]interface{}{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadBttrackFile(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "dstate")
	if err := os.WriteFile(path, bttrackFile(t), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, clk.cfg(false))
	stats, err := load(path, s, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Torrents: 2, Peers: 6, Legacy: 3, Skipped: 4}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	c, ok := s.Scrape(ih(1))
	if !ok || c.Complete != 1 || c.Incomplete != 2 || c.Downloaded != 7 {
		t.Errorf("torrent 1: %+v %v, want 1 seeder, 2 leechers, 7 downloaded", c, ok)
	}
	if c, ok := s.Scrape(ih(2)); !ok || c.Downloaded != 3 {
		t.Errorf("torrent 2 (completions only): %+v %v", c, ok)
	}
	for _, w := range walk(s) {
		for _, p := range w.peers {
			if !p.LastSeen.Equal(clk.Now()) {
				t.Errorf("peer %v seen %v, want load time", p.ID, p.LastSeen)
			}
			if p.Hidden != (p.ID == pid("M3-4-2--natnatnatnat")) {
				t.Errorf("peer %v hidden=%v", p.ID, p.Hidden)
			}
		}
	}
	// Oldest format: the peers dictionary at the top level.
	old, _ := bencode.Marshal(map[string]interface{}{
		ihs(5): map[string]interface{}{"M3-4-2--aaaaaaaaaaaa": map[string]interface{}{"ip": "10.0.0.1", "port": 1, "left": 0}},
	})
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, clk.cfg(false))
	if _, err := load(path, s2, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if c, ok := s2.Scrape(ih(5)); !ok || c.Complete != 1 {
		t.Errorf("old-format torrent: %+v %v", c, ok)
	}
}

// TestLoadUnusualFiles covers files bttrack would not write but a reader meets: keys out of
// order, unknown values of every type, torrents only in "completed", a bad info-hash in both
// dictionaries, strings longer than the reader keeps.
func TestLoadUnusualFiles(t *testing.T) {
	peer := "d2:ip8:10.0.0.14:porti1e4:lefti0e4:seeni1800000000ee"
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name  string
		file  string
		stats Stats
		check func(t *testing.T, s *swarm.Memory)
	}{
		{"peers-before-completed",
			"d5:peersd20:" + ihs(1) + "d20:M3-4-2--aaaaaaaaaaaa" + peer + "ee9:completedd20:" + ihs(1) + "i4e20:" + ihs(2) + "i2eee",
			Stats{Torrents: 3, Peers: 1},
			func(t *testing.T, s *swarm.Memory) {
				if c, _ := s.Scrape(ih(1)); c.Complete != 1 || c.Downloaded != 4 {
					t.Errorf("torrent 1: %+v", c)
				}
				if c, ok := s.Scrape(ih(2)); !ok || c.Downloaded != 2 {
					t.Errorf("torrent 2: %+v", c)
				}
			}},
		{"unknown-values",
			"d7:allowedd1:ali1e2:abd1:xleeee3:" + long[:3] + "i-1e9:completedd20:" + ihs(1) + "i1ee5:peersd20:" + ihs(1) +
				"d20:M3-4-2--aaaaaaaaaaaad2:ip8:10.0.0.15:extrald1:a1:bee4:porti1e4:lefti0e4:seeni1800000000e300:" + long + "i1eeee" + "5:zzzzzi0ee",
			Stats{Torrents: 1, Peers: 1},
			func(t *testing.T, s *swarm.Memory) {
				if c, _ := s.Scrape(ih(1)); c.Complete != 1 || c.Downloaded != 1 {
					t.Errorf("torrent 1: %+v", c)
				}
			}},
		{"bad-info-hash-counted-once",
			"d9:completedd3:badi1e300:" + long + "i1ee5:peersd3:badd20:M3-4-2--aaaaaaaaaaaa" + peer + "e300:" + long + "deee",
			Stats{Skipped: 3}, nil},
		{"long-peer-id-and-ip",
			"d5:peersd20:" + ihs(1) + "d300:" + long + peer + "20:M3-4-2--aaaaaaaaaaaad2:ip300:" + long + "4:porti1eeeee",
			Stats{Torrents: 1, Peers: 2, Skipped: 2}, nil},
		{"neither-layout", "d3:fooi1ee", Stats{}, nil},
		{"oldest-layout-bad-info-hash", "d3:badd20:M3-4-2--aaaaaaaaaaaa" + peer + "e20:" + ihs(1) + "d20:M3-4-2--aaaaaaaaaaaa" + peer + "ee",
			Stats{Torrents: 1, Peers: 1, Skipped: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			path := filepath.Join(t.TempDir(), "state")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			s := newStore(t, clk.cfg(false))
			stats, err := load(path, s, clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if stats != tc.stats {
				t.Errorf("stats %+v, want %+v", stats, tc.stats)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestMissingFileIsFreshStart(t *testing.T) {
	s := newStore(t, newClock().cfg(false))
	stats, err := Load(filepath.Join(t.TempDir(), "none"), s)
	if err != nil || stats != (Stats{}) {
		t.Errorf("Load(missing) = %+v, %v", stats, err)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   []byte("this is not bencode"),
		"truncated": bttrackFile(t)[:100],
		"trailing":  append(bttrackFile(t), "xx"...),
		"wrongtype": []byte("d5:peersi3ee"),
		"ip-as-int": []byte("d5:peersd20:" + ihs(1) + "d20:M3-4-2--aaaaaaaaaaaad2:ipi1eeeee"),
		// Found corrupt at its very end, after every torrent was read: the store stays empty.
		"truncated-late": bttrackFile(t)[:len(bttrackFile(t))-1],
		"port-as-string": []byte("d5:peersd20:" + ihs(1) + "d20:M3-4-2--aaaaaaaaaaaad2:ip8:10.0.0.14:port4:6881eeee"),
		"completed-list": []byte("d9:completedd20:" + ihs(1) + "li1eeee"),
		"torrent-as-int": []byte("d5:peersd20:" + ihs(1) + "i1eee"),
		// An absurd length is refused before anything is allocated for it.
		"huge-length":   []byte("d5:peersd999999999999999999:"),
		"length-beyond": []byte("d7:allowed100:abcee"),
		"bad-key-type":  []byte("d7:allowedd1:ad" + "i1ei2e" + "eee"),
		"too-deep":      []byte("d7:allowed" + strings.Repeat("l", 100) + strings.Repeat("e", 100) + "e"),
		"empty":         {},
		"bad-integer":   []byte("d9:completedd20:" + ihs(1) + "i1x2eee"),
		// BEP 3 forbids leading zeros; the library decoder this reader replaced refused them.
		"leading-zero-length": []byte("d9:completedd020:" + ihs(1) + "i1eee"),
		"leading-zero-int":    []byte("d9:completedd20:" + ihs(1) + "i01eee"),
		"negative-zero":       []byte("d9:completedd20:" + ihs(1) + "i-0eee"),
	} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			dir := t.TempDir()
			path := filepath.Join(dir, "state")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			s := newStore(t, clk.cfg(false))
			sv, err := NewSaver(SaverConfig{Path: path, Store: s, Registerer: reg, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sv.Load()
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a CorruptError", err)
			}
			want := path + ".corrupt-" + clk.Now().UTC().Format("20060102T150405")
			if ce.MovedTo != want {
				t.Errorf("moved to %q, want %q", ce.MovedTo, want)
			}
			if got, _ := os.ReadFile(want); !bytes.Equal(got, content) {
				t.Errorf("moved-aside file differs from the original")
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("original path still exists: %v", err)
			}
			if n := value(sv.loadFailures); n != 1 {
				t.Errorf("load failures = %v", n)
			}
			if s.Totals().Torrents != 0 {
				t.Errorf("store not empty after a corrupt load")
			}
			// Start-up goes on: the tracker works and saves a fresh file.
			if err := announce(t, s, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:1", "", 0, swarm.Started); err != nil {
				t.Fatal(err)
			}
			if err := sv.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path, newStore(t, clk.cfg(false))); err != nil {
				t.Errorf("fresh file after corrupt load: %v", err)
			}
			// A second corruption in the same second gets its own name.
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := load(path, newStore(t, clk.cfg(false)), clk.Now()); !errors.As(err, &ce) || ce.MovedTo != want+"-2" {
				t.Errorf("second corrupt load: %v", err)
			}
		})
	}
}

// TestSaveFileMode: a new state file is 0600 (it holds peers' addresses); an administrator's
// chmod of an existing one survives saves. (internal/atomicfile tests the atomic write.)
func TestSaveFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	s := newStore(t, newClock().cfg(false))
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("new state file mode %v, want 0600", st.Mode().Perm())
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after a save, want the administrator's 0640", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories; TestFailedWriteKeepsOldFile covers the failed write")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	old := []byte("d9:completedde5:peersdee")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o500)
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	reg := prometheus.NewRegistry()
	sv, err := NewSaver(SaverConfig{Path: path, Store: newStore(t, newClock().cfg(false)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.Save(); err == nil {
		t.Fatal("Save into a read-only directory succeeded")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Errorf("old file changed")
	}
	if n := value(sv.saveFailures); n != 1 {
		t.Errorf("save failures = %v", n)
	}
}

// TestSaverRemovesStaleTemps: a kill -9 during a save leaves the save's temporary file; the
// next start removes it, and only files named as our saves name them.
func TestSaverRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	stale := []string{".state.tmp-123456", ".state.tmp-9"}
	kept := []string{".state.tmp-", ".state.tmp-12x", ".other.tmp-123", "state.tmp-1", ".state.tmp-1.bak", "state"}
	for _, n := range append(stale, kept...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".state.tmp-77"), 0o700); err != nil { // not a file: not ours
		t.Fatal(err)
	}
	kept = append(kept, ".state.tmp-77")
	sv, err := NewSaver(SaverConfig{Path: path, Store: newStore(t, newClock().cfg(false))})
	if err != nil {
		t.Fatal(err)
	}
	if n := value(sv.staleTemps); n != float64(len(stale)) {
		t.Errorf("stale temporary files removed: %v, want %d", n, len(stale))
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	slices.Sort(kept)
	if !slices.Equal(names, kept) {
		t.Errorf("directory holds %q, want %q", names, kept)
	}
}

// TestNewSaverChecksDir: a state file in a missing or unwritable directory is refused at
// start, with the directory named, instead of losing the state at the first save.
func TestNewSaverChecksDir(t *testing.T) {
	dirs := []string{filepath.Join(t.TempDir(), "missing"), "/proc"}
	if os.Geteuid() != 0 {
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		t.Cleanup(func() { os.Chmod(ro, 0o700) })
		dirs = append(dirs, ro)
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, "state")
		_, err := NewSaver(SaverConfig{Path: path, Store: newStore(t, newClock().cfg(false))})
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("NewSaver(%s) = %v, want an error naming the directory", path, err)
		}
	}
}

func TestSaverRefusesToOverwriteUnmovableFile(t *testing.T) {
	sv, err := NewSaver(SaverConfig{Path: filepath.Join(t.TempDir(), "state"), Store: newStore(t, newClock().cfg(false))})
	if err != nil {
		t.Fatal(err)
	}
	sv.refused = errors.New("refused")
	if err := sv.Save(); err == nil {
		t.Error("Save after an unmovable corrupt file succeeded")
	}
	if err := sv.Close(); err == nil {
		t.Error("Close after an unmovable corrupt file saved")
	}
}

func TestSaverPeriodicAndFinal(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk.cfg(false))
	path := filepath.Join(t.TempDir(), "state")
	reg := prometheus.NewRegistry()
	sv, err := NewSaver(SaverConfig{Path: path, Store: s, Interval: 10 * time.Millisecond, Registerer: reg, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Load(); err != nil {
		t.Fatal(err)
	}
	if err := announce(t, s, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:1", "", 0, swarm.Started); err != nil {
		t.Fatal(err)
	}
	sv.Start()
	sv.Start() // idempotent
	testenv.WaitFor(t, 10*time.Second, "a periodic save", func() error {
		if value(sv.lastSave) == 0 {
			return errors.New("no save yet")
		}
		return nil
	})
	if got := value(sv.lastSave); got != float64(clk.Now().Unix()) {
		t.Errorf("last save timestamp %v, want %v", got, clk.Now().Unix())
	}
	if err := announce(t, s, ih(2), "-TR3000-bbbbbbbbbbbb", "10.0.0.2:1", "", 0, swarm.Started); err != nil {
		t.Fatal(err)
	}
	if err := sv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	b := newStore(t, clk.cfg(false))
	if _, err := Load(path, b); err != nil {
		t.Fatal(err)
	}
	if b.Totals().Torrents != 2 {
		t.Errorf("final save lost the last announce: %+v", b.Totals())
	}
	mfs, err := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"webswarm_tracker_state_last_save_timestamp_seconds", "webswarm_tracker_state_load_failures_total",
		"webswarm_tracker_state_save_duration_seconds", "webswarm_tracker_state_save_failures_total",
		"webswarm_tracker_state_stale_temp_files_removed_total"}
	if err != nil || !slices.Equal(names, want) {
		t.Errorf("registered metrics: %v, %v", names, err)
	}
}

func TestNewSaverErrors(t *testing.T) {
	s := newStore(t, newClock().cfg(false))
	for _, cfg := range []SaverConfig{{Store: s}, {Path: "x"}, {Path: "x", Store: s, Interval: -1}} {
		if _, err := NewSaver(cfg); err == nil {
			t.Errorf("NewSaver(%+v) accepted", cfg)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewSaver(SaverConfig{Path: "x", Store: s, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSaver(SaverConfig{Path: "x", Store: s, Registerer: reg}); err == nil {
		t.Error("second registration on one registry accepted")
	}
}

// bigStore holds 100,000 IPv4 peers in 10,000 torrents.
func bigStore(b testing.TB) *swarm.Memory {
	s := newStore(b, swarm.Config{})
	var out swarm.PeerList
	for i := range 100_000 {
		var id bittorrent.PeerID
		copy(id[:], fmt.Sprintf("-TR3000-%012d", i))
		a := swarm.Announce{InfoHash: ih(i % 10_000), PeerID: id, Left: uint64(i % 3), Key: []byte("key"),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)}
		if _, err := s.Announce(&a, &out); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkSave100kPeers(b *testing.B) {
	s := bigStore(b)
	path := filepath.Join(b.TempDir(), "state")
	b.ResetTimer()
	for b.Loop() {
		if err := Save(path, s); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size()), "file-bytes")
}

func BenchmarkLoad100kPeers(b *testing.B) {
	s := bigStore(b)
	path := filepath.Join(b.TempDir(), "state")
	if err := Save(path, s); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst := newStore(b, swarm.Config{})
		b.StartTimer()
		if _, err := Load(path, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// discardStore takes restores and keeps nothing: BenchmarkRead100kPeers measures the reader
// alone, without the store's own tables.
type discardStore struct{ swarm.Store }

func (discardStore) Restore(bittorrent.InfoHash, uint32, []swarm.PeerRecord) error { return nil }

func BenchmarkRead100kPeers(b *testing.B) {
	s := bigStore(b)
	path := filepath.Join(b.TempDir(), "state")
	if err := Save(path, s); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(path, discardStore{}); err != nil {
			b.Fatal(err)
		}
	}
}

// value reads a counter's or gauge's current value.
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if c := pb.GetCounter(); c != nil {
		return c.GetValue()
	}
	return pb.GetGauge().GetValue()
}

// ihs is ih(i) as a string (a bencode dictionary key).
func ihs(i int) string { h := ih(i); return string(h[:]) }

func TestPeerSnapSize(t *testing.T) {
	if n := unsafe.Sizeof(peerSnap{}); n > 56 {
		t.Errorf("peerSnap is %d bytes", n)
	}
}
