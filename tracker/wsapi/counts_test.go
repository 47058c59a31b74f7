package wsapi

import (
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

func newStore(t *testing.T, cfg swarm.Config) *swarm.Memory {
	t.Helper()
	st, err := swarm.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// httpAnnounce registers an HTTP peer in st.
func httpAnnounce(t *testing.T, st swarm.Store, ih bittorrent.InfoHash, id string, left uint64, ev swarm.Event) swarm.Result {
	t.Helper()
	a := &swarm.Announce{InfoHash: ih, Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 6000+uint16(id[len(id)-1])), Left: left, Event: ev, NumWant: 50}
	copy(a.PeerID[:], id)
	r, err := st.Announce(a, &swarm.PeerList{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// One swarm view: WebSocket replies count the store's HTTP and UDP peers, HTTP and UDP
// announces and scrapes (the store WithOverlay) count the WebSocket ones, and a WebSocket
// completion is counted once per peer, in the store, where it is saved.
func TestOneSwarmView(t *testing.T) {
	st := newStore(t, swarm.Config{})
	s, url := newTestServer(t, Config{Store: st})
	all := swarm.WithOverlay(st, s)
	ihs := bin("mixed")
	ih := bittorrent.InfoHash(bittorrentHash(ihs))

	httpAnnounce(t, st, ih, "-qB4520-httpseeder01", 0, swarm.Started)
	a := dial(t, url, nil)
	a.sendJSON(announce(ihs, bin("browser-a"), 100))
	if r := a.recv(); r["complete"] != 1.0 || r["incomplete"] != 1.0 {
		t.Fatalf("WebSocket reply %v: want the HTTP seeder and the browser", r)
	}
	if r := httpAnnounce(t, all, ih, "-LT2080-httpleecher1", 10, swarm.Started); r.Complete != 1 || r.Incomplete != 2 {
		t.Fatalf("HTTP announce counts %+v: want the browser too", r.Counts)
	}

	// Completed twice on one connection: counted once.
	done := announce(ihs, bin("browser-a"), 0)
	done["event"] = "completed"
	for range 2 {
		a.sendJSON(done)
		if r := a.recv(); r["complete"] != 2.0 || r["incomplete"] != 1.0 {
			t.Fatalf("reply to completed: %v", r)
		}
	}
	if c, ok := st.Scrape(ih); !ok || c.Downloaded != 1 {
		t.Fatalf("store's completions %+v %v, want the browser's one", c, ok)
	}
	if c, ok := all.Scrape(ih); !ok || c.Complete != 2 || c.Incomplete != 1 || c.Downloaded != 1 {
		t.Fatalf("HTTP scrape %+v %v", c, ok)
	}
	a.sendJSON(map[string]any{"action": "scrape", "info_hash": ihs})
	f := a.recv()["files"].(map[string]any)[ihs].(map[string]any)
	if f["complete"] != 2.0 || f["incomplete"] != 1.0 || f["downloaded"] != 1.0 {
		t.Fatalf("WebSocket scrape %v", f)
	}
	// The saved state (Walk) holds the completion and the HTTP peers only.
	st.Walk(func(wih bittorrent.InfoHash, downloaded uint32, peers []swarm.PeerRecord) bool {
		if wih == ih && (downloaded != 1 || len(peers) != 2) {
			t.Errorf("walk: %d completions, %d peers; want 1 and the 2 HTTP peers", downloaded, len(peers))
		}
		return true
	})

	// A torrent only browsers share is known to HTTP scrapes and the totals.
	only := bin("browsers-only")
	a.sendJSON(announce(only, bin("browser-a"), 5))
	a.recv()
	if c, ok := all.Scrape(bittorrentHash(only)); !ok || c.Incomplete != 1 {
		t.Fatalf("HTTP scrape of a browser-only torrent: %+v %v", c, ok)
	}
	if tot := all.Totals(); tot.Torrents != 2 || tot.Seeders != 2 || tot.Leechers != 2 || tot.Downloaded != 1 {
		t.Fatalf("totals %+v", tot)
	}
	n := 0
	all.RangeTorrents(func(bittorrent.InfoHash, swarm.Counts) bool { n++; return true })
	if n != 2 {
		t.Fatalf("RangeTorrents listed %d torrents, want 2", n)
	}
}

// A completion the store refuses (it is full) is counted as lost, not silently dropped.
func TestCompletionLost(t *testing.T) {
	st := newStore(t, swarm.Config{MaxTorrents: 1, KeepDead: true})
	s, url := newTestServer(t, Config{Store: st})
	httpAnnounce(t, st, bittorrentHash(bin("other")), "-qB4520-httpseeder01", 0, swarm.Started)
	a := dial(t, url, nil)
	done := announce(bin("full"), bin("browser-a"), 0)
	done["event"] = "completed"
	a.sendJSON(done)
	a.recv()
	if got := testutil.ToFloat64(s.counts.lost); got != 1 {
		t.Fatalf("lost completions %v, want 1", got)
	}
}

// Without a Store the WebSocket tracker counts completions itself, once per peer.
func TestCompletionWithoutStore(t *testing.T) {
	s, url := newTestServer(t, Config{})
	a := dial(t, url, nil)
	done := announce(bin("t"), bin("browser-a"), 0)
	done["event"] = "completed"
	for range 2 {
		a.sendJSON(done)
		a.recv()
	}
	if c, ok := s.Counts(bittorrentHash(bin("t"))); !ok || c.Downloaded != 1 || c.Complete != 1 {
		t.Fatalf("counts %+v %v", c, ok)
	}
}

// BenchmarkCounts is what an HTTP or UDP announce pays for the browsers of its torrent
// (1,000 torrents with WebSocket peers), from every core at once. It must report 0 allocs/op.
func BenchmarkCounts(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ihs := make([]bittorrent.InfoHash, 1000)
	for i := range ihs {
		ihs[i][0], ihs[i][1] = byte(i), byte(i>>8)
		s.counts.counted(&ihs[i], i%5 == 0, 1)
		s.torrents.Add(1)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := s.Counts(ihs[i%len(ihs)]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
}
