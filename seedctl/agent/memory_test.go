package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// idleTorrentBudget is what one more idle seeding torrent may add to the agent's live heap,
// its start-up announce done: the torrent, its announcer, the indexes and the schedule.
// 10,000 such torrents are the agent's sizing point (issue 12: RSS well under 80 MB); the Go
// heap grows to about twice the live figure before a collection, so every 100 bytes here
// are about 2 MB of RSS there.
const idleTorrentBudget = 1800

// TestIdleTorrentHeap measures what an idle seeding torrent costs the live heap: the growth
// from n to 2n torrents (so what does not grow with the torrents — connections, metrics,
// the agent itself — cancels out), each started from a clean resume record and announced
// once to a tracker that answers with no peers.
func TestIdleTorrentHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 800 torrents")
	}
	const n = 400
	var announces atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		announces.Add(1)
		w.Write([]byte("d8:intervali1800e12:min intervali900e5:peers0:e"))
	}))
	defer srv.Close()
	staging, dir, state := t.TempDir(), t.TempDir(), t.TempDir()
	startupCorpus(t, 2*n, staging, state, srv.URL+"/announce")
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			for _, name := range []string{fmt.Sprintf("t%06d.bin", i), fmt.Sprintf("t%06d.bin.torrent", i)} {
				if err := os.Rename(filepath.Join(staging, name), filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	publish(0, n)

	cfg := testConfig(t, dir)
	cfg.StateDir = state
	cfg.NoWatch = true
	cfg.AnnounceRate = 100000
	a := start(t, cfg)
	settled := func(want int) int64 {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for a.seedingCount() < want || announces.Load() < int64(want) {
			if time.Now().After(deadline) {
				t.Fatalf("after 2 minutes: %d of %d seeding, %d announces", a.seedingCount(), want, announces.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Idle keep-alive connections to the tracker are the agent's, not the torrents':
		// how many the announce burst left open depends on timing (each holds ~10 KB of
		// buffers, read as hundreds of bytes a torrent), so they are closed before reading.
		srv.CloseClientConnections()
		// The least of the readings once the heap stops shrinking: a scan or an announce
		// still ending holds memory that is not the torrents' (a rescan's directory buffers
		// read as ~600 bytes a torrent, and on a loaded machine the scan can outlast the
		// last torrent reaching "seeding" by a while). Ten readings in a row without a new
		// low, within 10 s.
		least, same := liveHeap(), 0
		for end := time.Now().Add(10 * time.Second); same < 10 && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
			if h := liveHeap(); h < least {
				least, same = h, 0
			} else {
				same++
			}
		}
		return least
	}
	one := settled(n)
	publish(n, 2*n)
	a.Rescan()
	two := settled(2 * n)
	per := (two - one) / n
	t.Logf("an idle seeding torrent costs %d bytes of live heap", per)
	if per > idleTorrentBudget {
		t.Errorf("an idle seeding torrent costs %d bytes of live heap, budget %d", per, idleTorrentBudget)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
