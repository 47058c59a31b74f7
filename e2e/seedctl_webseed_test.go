package e2e

// seedctl get with web seeds (BEP 19): a real nginx alone, and a web seed beside a peer.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestSeedctlGetWebSeedNginx: no peer at all (the tracker is down), a real nginx serves a
// multi-file payload with awkward names: seedctl get fetches it through the web seed alone.
func TestSeedctlGetWebSeedNginx(t *testing.T) {
	docroot := t.TempDir()
	want := spMultiPayload(t, docroot, "tree")
	site := scStartNginx(t, docroot, false)
	dead := fmt.Sprintf("http://127.0.0.1:%d/announce", testenv.FreePort(t, "127.0.0.1"))
	torrent := makeTorrent(t, filepath.Join(docroot, "tree"), dead, "-w", site+"/")
	out := t.TempDir()
	get := spStartSeedctl(t, t.TempDir(), "127.0.0.1", "get", torrent, "--out", out, "--exit-on-complete")
	spWaitExit(t, get, spTimeout)
	spSameTree(t, out, "tree", want)
}

// TestSeedctlGetWebSeedAndPeer: a web seed capped at 1 MB/s (counting the bytes it serves)
// and an aria2 seeder together: the download is verified, and both sources delivered part of
// it — the web seed something, but less than the whole payload.
func TestSeedctlGetWebSeedAndPeer(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	docroot := t.TempDir()
	payload := writePayload(t, docroot, "file.bin", 6<<20+999)
	var served atomic.Int64
	limit := rate.NewLimiter(1<<20, 64<<10)
	fs := http.FileServer(http.Dir(docroot))
	site := scServe(t, docroot, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.ServeHTTP(&slowWriter{ResponseWriter: w, n: &served, limit: limit, ctx: r.Context()}, r)
	}))
	torrent := makeTorrent(t, filepath.Join(docroot, "file.bin"), tp.Announce, "-w", site+"/file.bin")
	startAria2Seed(t, torrent, docroot, "127.0.0.2")
	ih := readTorrent(t, torrent).InfoHash
	testenv.WaitFor(t, time.Minute, "aria2 seeding", func() error {
		s, err := scrape(scrapeURLOf(t, tp.Announce), ih)
		if err != nil {
			return err
		}
		if s.Complete < 1 {
			return fmt.Errorf("complete %d", s.Complete)
		}
		return nil
	})
	out := t.TempDir()
	get := spStartSeedctl(t, t.TempDir(), "127.0.0.4", "get", torrent, "--out", out, "--exit-on-complete")
	sawPeer := false
	testenv.WaitFor(t, spTimeout, "get to finish", func() error {
		if s, ok := spLastStatus(get); ok && s.Peers > 0 {
			sawPeer = true
		}
		if done, _ := get.Exited(); done {
			return nil
		}
		return errors.New("running")
	})
	spWaitExit(t, get, time.Second)
	sameFile(t, filepath.Join(out, "file.bin"), payload)
	if n := served.Load(); n == 0 || n >= int64(len(payload)) {
		t.Errorf("the web seed served %d of %d bytes: want part of it, the peer the rest", n, len(payload))
	}
	if !sawPeer {
		t.Errorf("seedctl never reported the aria2 peer")
	}
}

// slowWriter passes a response body through a rate limiter and counts its bytes.
type slowWriter struct {
	http.ResponseWriter
	n     *atomic.Int64
	limit *rate.Limiter
	ctx   context.Context
}

func (c *slowWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		chunk := min(len(b), 16<<10)
		if err := c.limit.WaitN(c.ctx, chunk); err != nil {
			return written, err
		}
		n, err := c.ResponseWriter.Write(b[:chunk])
		written += n
		c.n.Add(int64(n))
		if err != nil {
			return written, err
		}
		b = b[chunk:]
	}
	return written, nil
}
