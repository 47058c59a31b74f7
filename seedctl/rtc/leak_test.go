package rtc

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// settled waits until the process has no more file descriptors and goroutines than
// before (a few goroutines of the runtime and the test framework may come and go).
func settled(t *testing.T, fds, goroutines int) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "file descriptors and goroutines back to their count", func() error {
		f, g := openFDs(t), runtime.NumGoroutine()
		if f > fds || g > goroutines+2 {
			return fmt.Errorf("%d fds (%d before), %d goroutines (%d before)", f, fds, g, goroutines)
		}
		return nil
	})
}

// TestCyclesLeaveNothing: 1,000 offer/answer cycles — half connected and closed, half
// offers closed unanswered (expired) — leave no file descriptor, goroutine or slot behind.
func TestCyclesLeaveNothing(t *testing.T) {
	cycles := 1000
	if testing.Short() {
		cycles = 100
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a := newTransport(t, Config{Metrics: m, MaxPeers: 16})
	b := newTransport(t, Config{Metrics: m, MaxPeers: 16})
	// One cycle first, so that what pion starts once per process is not counted as a leak.
	ac, bc := pair(t, a, b)
	ac.Close()
	bc.Close()
	runtime.GC()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < cycles; i += workers {
				if i%2 == 1 {
					o, err := a.Offer(context.Background())
					if err != nil {
						errs <- err
						return
					}
					o.Close()
					continue
				}
				ac, bc := pair(t, a, b)
				ac.Write([]byte("x"))
				ac.Close()
				bc.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	settled(t, fds, goroutines)
	if g := testutil.ToFloat64(m.peers); g != 0 {
		t.Errorf("peer connections gauge = %v after every cycle closed, want 0", g)
	}
	for range 16 { // every slot is free again
		o, err := a.Offer(context.Background())
		if err != nil {
			t.Fatalf("offer after the cycles: %v", err)
		}
		defer o.Close()
	}
}

// TestClientExpiresOffers: a client alone in its swarm closes its unanswered offers after
// OfferTTL, and stopping it closes its tracker connection: nothing is left behind.
func TestClientExpiresOffers(t *testing.T) {
	url := newTracker(t, wsapi.Config{})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	tr := newTransport(t, Config{Metrics: m})
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	cl, stop := runClient(t, ClientConfig{URL: url, InfoHash: bittorrent.InfoHash{9}, PeerID: peerID("alone"),
		Transport: tr, HandleConn: func(c net.Conn, _ bool) { c.Close() }, Offers: 3, OfferTTL: 300 * time.Millisecond})
	testenv.WaitFor(t, 30*time.Second, "three offers made and expired", func() error {
		if n := testutil.ToFloat64(m.offers.WithLabelValues(offerExpired)); n < 3 || cl.Peers() != 0 {
			return fmt.Errorf("%v expired, %d PeerConnections open", n, cl.Peers())
		}
		return nil
	})
	stop()
	settled(t, fds, goroutines)
}
