package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/swarm"
	"github.com/webswarm/webswarm/tracker/swarm/redisstore"
)

// TestTrackerRedisStatsMillion: with 1,000,000 peers in 1,000 swarms in a real redis-server,
// the tracker serves the stats page, /stats.json (every peer counted by role, family, client
// and address), /metrics and a full scrape with a peak RSS (VmHWM) of at most 50 MB: the
// shared store is read in bounded batches, never held whole. REDIS_STATS_PEERS sets another
// population (it is skipped with -short).
func TestTrackerRedisStatsMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("fills Redis with a million peers")
	}
	const torrents, maxRSS = 1000, 50 << 20
	peers := 1_000_000
	if v := os.Getenv("REDIS_STATS_PEERS"); v != "" {
		var err error
		if peers, err = strconv.Atoi(v); err != nil {
			t.Fatalf("REDIS_STATS_PEERS=%q: %v", v, err)
		}
	}
	url := "redis://" + testenv.StartRedis(t)
	fillRedis(t, url, "m:", torrents, peers)

	tr := startTracker(t, "--store", url, "--store_prefix", "m:", "--max_full_scrape", "0")
	get := func(path string) []byte {
		t.Helper()
		c := &http.Client{Timeout: 2 * time.Minute}
		resp, err := c.Get(tr.Base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, testenv.Tail(body, 300))
		}
		return body
	}
	var st struct {
		Torrents int            `json:"torrents"`
		Peers    map[string]int `json:"peers"`
		Unique   map[string]int `json:"unique_ips"`
	}
	if err := json.Unmarshal(get("/stats.json"), &st); err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range st.Peers {
		sum += n
	}
	if st.Torrents != torrents || sum != peers {
		t.Errorf("stats.json: %d torrents, %d peers (%v); want %d and %d", st.Torrents, sum, st.Peers, torrents, peers)
	}
	if page := get("/stats"); !strings.Contains(string(page), "<table") {
		t.Errorf("stats page without its table: %s", testenv.Tail(page, 300))
	}
	get("/metrics")
	if sc := get("/scrape"); strings.Count(string(sc), "downloaded") != torrents {
		t.Errorf("full scrape: %d torrents, want %d", strings.Count(string(sc), "downloaded"), torrents)
	}
	hwm := procStatus(t, tr.Proc.Cmd.Process.Pid, "VmHWM")
	t.Logf("%d peers in Redis: tracker peak RSS %.1f MiB while serving stats, metrics and a full scrape", peers, float64(hwm)/(1<<20))
	if hwm > maxRSS {
		t.Errorf("tracker peak RSS %d MiB, want at most %d", hwm>>20, maxRSS>>20)
	}
}

// fillRedis stores peers (IPv4, a third seeders) in torrents swarms of a Redis store under
// prefix, restored a swarm a call from four goroutines.
func fillRedis(t *testing.T, url, prefix string, torrents, peers int) {
	t.Helper()
	rdb, err := redisstore.Dial(url, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	s, err := redisstore.New(context.Background(), rdb, swarm.Config{GCInterval: -1}, redisstore.Options{Prefix: prefix, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var recs []swarm.PeerRecord
			for tor := w; tor < torrents; tor += 4 {
				recs = recs[:0]
				for i := tor; i < peers; i += torrents {
					var id bittorrent.PeerID
					copy(id[:], fmt.Sprintf("-WS0001-%012d", i))
					recs = append(recs, swarm.PeerRecord{ID: id,
						Addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881),
						Seeder: i%3 == 0, LastSeen: now})
				}
				if err := s.Restore(swarm.SuiteInfoHash(tor), 1, recs); err != nil {
					errs <- fmt.Errorf("torrent %d: %w", tor, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
