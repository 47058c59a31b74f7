package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
)

// TestSchedulerReplacedWhileAnnouncing: a torrent re-checked while a worker is sending its
// announce gets a new announcer (removed, then added again). The new one must announce when
// add says, not an interval later at the time the old one's Step returned, and the old one
// must be stopped. TestController failed about once in 20 runs on this ("started again after
// the re-check: not yet"), and the tracker was never told "stopped" for the old one.
func TestSchedulerReplacedWhileAnnouncing(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var events []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev := r.URL.Query().Get("event")
		mu.Lock()
		events = append(events, ev)
		first := len(events) == 1
		mu.Unlock()
		if first {
			<-release // the first announce is in flight until the test lets it end
		}
		w.Write([]byte("d8:intervali1800e5:peers0:e"))
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	count := func(ev string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range events {
			if e == ev {
				n++
			}
		}
		return n
	}
	newAnn := func() *announcer.Announcer {
		a, err := announcer.New(announcer.Config{Tiers: [][]string{{srv.URL + "/announce"}},
			InfoHash: bittorrent.InfoHash{1}, PeerID: bittorrent.PeerID{2}, Port: 6881, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	stops := make(chan *announcer.Announcer, 4)
	s := newScheduler(1000, 1, func(*torrent, announcer.Status, announcer.Status, []netip.AddrPort) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, func(a *announcer.Announcer) {
			a.Stop(context.Background())
			stops <- a
		})
	}()
	defer func() {
		cancel()
		<-done
	}()

	tor := &torrent{heapIdx: -1}
	old := newAnn()
	s.add(tor, old, time.Now())
	waitUntil(t, "the first announce in flight", func() bool { return count("started") == 1 })
	if a := s.remove(tor); a != nil {
		t.Fatal("remove handed back an announcer a worker holds")
	}
	s.add(tor, newAnn(), time.Now())
	close(release)

	waitUntil(t, "the new announcer's started", func() bool { return count("started") == 2 })
	select {
	case a := <-stops:
		if a != old {
			t.Error("stopped an announcer other than the replaced one")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced announcer was never stopped")
	}
	waitUntil(t, "the replaced announcer's stopped", func() bool { return count("stopped") == 1 })
}
