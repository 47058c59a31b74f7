package httpapi

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// slowRange is a store whose RangeTorrents, after walking, waits for release: a full scrape
// of a huge tracker caught in the middle of its build.
type slowRange struct {
	swarm.Store
	ranges  atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (s *slowRange) RangeTorrents(fn func(bittorrent.InfoHash, swarm.Counts) bool) {
	s.Store.RangeTorrents(fn)
	if s.ranges.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
}

// withStore returns a Config change serving a tracker over store.
func withStore(t *testing.T, store swarm.Store) func(*Config) {
	tr, err := announce.New(announce.Config{}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return func(c *Config) { c.Tracker = tr }
}

// serve runs one request on h in its own goroutine and delivers the body.
func serve(h *Handler, target string) <-chan string {
	done := make(chan string, 1)
	go func() {
		r := httptest.NewRequest("GET", "http://tracker"+target, nil)
		r.RemoteAddr = "10.0.0.9:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		done <- w.Body.String()
	}()
	return done
}

// waitBody waits (bounded) for a request started by serve.
func waitBody(t *testing.T, what string, c <-chan string) string {
	t.Helper()
	var body string
	testenv.WaitFor(t, 10*time.Second, what, func() error {
		select {
		case body = <-c:
			return nil
		default:
			return errors.New("still waiting")
		}
	})
	return body
}

// TestFullScrapeBuildBlocksNobody: while one request builds the full scrape, announces and
// other full scrapes are answered without waiting for it (a full scrape is built on the
// accepting goroutine that new announces also wait for).
func TestFullScrapeBuildBlocksNobody(t *testing.T) {
	mem, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	store := &slowRange{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	h := newHandler(t, withStore(t, store))
	ih := []byte("01234567890123456789")
	get(t, h, "10.0.0.1:1", ann(ih, []byte("-LT2080-aaaaaaaaaaaa"), 7000, "5"), nil)

	first := serve(h, "/scrape")
	<-store.entered
	if body := waitBody(t, "an announce during the build", serve(h, ann(ih, []byte("-LT2080-bbbbbbbbbbbb"), 7001, "5"))); !strings.Contains(body, "5:peers") {
		t.Errorf("announce during the build: %q", body)
	}
	if body := waitBody(t, "a second full scrape during the build", serve(h, "/scrape")); !strings.Contains(body, "try again") {
		t.Errorf("second full scrape during the build: %q, want a failure saying to retry", body)
	}
	close(store.release)
	if body := waitBody(t, "the full scrape being built", first); !strings.HasPrefix(body, "d5:filesd20:01234567890123456789d") {
		t.Errorf("full scrape: %q", body)
	}
	// Within the second, the body is served again without a walk.
	if body := waitBody(t, "a cached full scrape", serve(h, "/scrape")); !strings.HasPrefix(body, "d5:files") || store.ranges.Load() != 1 {
		t.Errorf("cached full scrape: %q after %d walks", body, store.ranges.Load())
	}
}

// TestFullScrapeRefusedAboveLimit: with more torrents than MaxFullScrape the full scrape is
// a failure naming the way out (specific scrapes), counted; at the limit it is served.
func TestFullScrapeRefusedAboveLimit(t *testing.T) {
	h := newHandler(t, func(c *Config) { c.MaxFullScrape = 3 })
	for i := range 3 {
		get(t, h, "10.0.0.1:1", ann([]byte(strings.Repeat(string(rune('a'+i)), 20)), []byte("-LT2080-aaaaaaaaaaaa"), 7000, "5"), nil)
	}
	if rep := get(t, h, "10.0.0.1:1", "/scrape", nil); rep.Failure != "" {
		t.Fatalf("full scrape at the limit: %q", rep.Failure)
	}
	get(t, h, "10.0.0.1:1", ann([]byte(strings.Repeat("d", 20)), []byte("-LT2080-aaaaaaaaaaaa"), 7000, "5"), nil)
	// A fresh handler: the first one caches its last reply for a second.
	h2 := newHandler(t, func(c *Config) { c.MaxFullScrape = 3; c.Tracker = h.cfg.Tracker })
	if rep := get(t, h2, "10.0.0.1:1", "/scrape", nil); !strings.Contains(rep.Failure, "more than 3 torrents") {
		t.Fatalf("full scrape above the limit: %q", rep.Failure)
	}
}
