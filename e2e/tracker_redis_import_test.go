package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/dfile"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// importState writes a state file of peers peers over torrents torrents, as a tracker with
// the memory store saves it: a third of each swarm seeders, one peer in seven completed
// through the tracker, IPv4 and IPv6 peers.
func importState(t *testing.T, path string, torrents, peers int) {
	t.Helper()
	mem, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var out swarm.PeerList
	for i := range peers {
		var a swarm.Announce
		copy(a.InfoHash[:], fmt.Sprintf("import-torrent-%05d", i%torrents))
		copy(a.PeerID[:], fmt.Sprintf("-IM0001-%012d", i))
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if i%5 == 0 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		a.Addr = netip.AddrPortFrom(ip, uint16(1024+i%60000))
		a.Left, a.Event = 1, swarm.Started
		if i%3 == 0 {
			a.Left = 0
		}
		if i%7 == 0 {
			a.Left, a.Event = 0, swarm.Completed
		}
		out.Reset()
		if _, err := mem.Announce(&a, &out); err != nil {
			t.Fatalf("announce %d: %v", i, err)
		}
	}
	if err := dfile.Save(path, mem); err != nil {
		t.Fatal(err)
	}
}

// fullScrape fetches the tracker's full scrape (no info_hash): every torrent's counts.
func fullScrape(t *testing.T, tr *trackerProc) map[string]scrapeStats {
	t.Helper()
	body, err := trackerGet(tr.Base + "/scrape")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Files map[string]scrapeStats `bencode:"files"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("full scrape: %v", err)
	}
	return r.Files
}

// TestTrackerRedisImportDfile: a state file of 10,000 peers over 200 torrents, served by a
// tracker with the memory store (--dfile), is imported (--import_dfile) into a single Redis
// and into a Redis Cluster, and the full scrape at the Redis-backed tracker is the same,
// torrent for torrent. Importing it again changes nothing: skipped by its marker, and with
// the marker gone, the store's restore keeps what it has (peers not doubled, completions not
// added again).
func TestTrackerRedisImportDfile(t *testing.T) {
	const torrents, peers = 200, 10_000
	dir := t.TempDir()
	state := filepath.Join(dir, "state.bencode")
	importState(t, state, torrents, peers)
	// The memory tracker saves its own copy on exit; the import reads the original.
	memFile := filepath.Join(dir, "memory.bencode")
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(memFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mem := startTracker(t, "--dfile", memFile)
	before := fullScrape(t, mem)
	var seeders, leechers, completed int64
	for _, c := range before {
		seeders, leechers, completed = seeders+c.Complete, leechers+c.Incomplete, completed+c.Downloaded
	}
	if len(before) != torrents || seeders+leechers != peers || completed == 0 {
		t.Fatalf("memory tracker: %d torrents, %d peers, %d completed; want %d torrents, %d peers, some completed",
			len(before), seeders+leechers, completed, torrents, peers)
	}
	t.Logf("state file: %d torrents, %d seeders, %d leechers, %d completed, %d bytes", len(before), seeders, leechers, completed, len(b))

	sum := sha256.Sum256(b)
	marker := "webswarm:imported:" + hex.EncodeToString(sum[:])
	for _, kind := range []string{"redis", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			var store string
			var rdb redis.UniversalClient
			if kind == "redis" {
				addr := testenv.StartRedis(t)
				store, rdb = "redis://"+addr, redis.NewClient(&redis.Options{Addr: addr})
			} else {
				addrs := testenv.StartRedisCluster(t)
				store, rdb = "redis-cluster://"+strings.Join(addrs, ","), redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
			}
			defer rdb.Close()
			a := startTracker(t, "--store", store, "--import_dfile", state)
			if out := a.Proc.Output(); !strings.Contains(out, "state file imported") {
				t.Errorf("first import not logged as done:\n%s", testenv.Tail([]byte(out), 2000))
			}
			if after := fullScrape(t, a); !reflect.DeepEqual(after, before) {
				t.Fatalf("full scrape after the import differs from the memory tracker's:\n%s", scrapeDiff(before, after))
			}

			// The same file again, at a second instance: skipped by its marker.
			b2 := startTracker(t, "--store", store, "--import_dfile", state)
			if out := b2.Proc.Output(); !strings.Contains(out, "already imported") {
				t.Errorf("second import not skipped:\n%s", testenv.Tail([]byte(out), 2000))
			}
			if again := fullScrape(t, b2); !reflect.DeepEqual(again, before) {
				t.Fatalf("full scrape after a second import differs:\n%s", scrapeDiff(before, again))
			}

			// Without the marker (an import cut short before it was written), the import runs
			// again and still changes nothing.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if n, err := rdb.Del(ctx, marker).Result(); err != nil || n != 1 {
				t.Fatalf("DEL %s: %d %v, want the marker deleted", marker, n, err)
			}
			c := startTracker(t, "--store", store, "--import_dfile", state)
			if out := c.Proc.Output(); !strings.Contains(out, "state file imported") {
				t.Errorf("import without its marker not run again:\n%s", testenv.Tail([]byte(out), 2000))
			}
			if again := fullScrape(t, c); !reflect.DeepEqual(again, before) {
				t.Fatalf("full scrape after importing the file twice differs:\n%s", scrapeDiff(before, again))
			}
		})
	}
}

// scrapeDiff lists up to ten torrents whose counts differ.
func scrapeDiff(want, got map[string]scrapeStats) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "torrents: want %d, got %d\n", len(want), len(got))
	n := 0
	for ih, w := range want {
		if g, ok := got[ih]; (!ok || g != w) && n < 10 {
			fmt.Fprintf(&sb, "  %x: want %+v, got %+v (present %v)\n", ih, w, g, ok)
			n++
		}
	}
	return sb.String()
}

// TestTrackerRedisImportBadFile: an --import_dfile that is missing or not a state file stops
// start-up with a message naming it, and the file is left as it was; --dfile with a shared
// store is refused, saying why.
func TestTrackerRedisImportBadFile(t *testing.T) {
	bin := testenv.Build(t, "./tracker")
	store := "redis://" + testenv.StartRedis(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.bencode")
	content := []byte("d5:peersd20:" + strings.Repeat("x", 20) + "i3eee")
	if err := os.WriteFile(garbage, content, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--import_dfile", garbage}, garbage},
		{[]string{"--import_dfile", filepath.Join(dir, "missing.bencode")}, "missing.bencode"},
		{[]string{"--dfile", filepath.Join(dir, "state")}, "persistence"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		port := testenv.FreePort(t, "127.0.0.1")
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--store", store}, tc.args...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err %v, output %q; want a failed start naming %q", tc.args, err, testenv.Tail(out, 500), tc.want)
		}
	}
	if got, err := os.ReadFile(garbage); err != nil || string(got) != string(content) {
		t.Errorf("the bad file was not left as it was: %v", err)
	}
}
