package rtc

import (
	"context"
	"errors"
	"fmt"
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

// TestClientsShareSocket: the torrents of one process share their WebSocket to a tracker
// URL: 150 torrents are all announced on two sockets (100 torrents a socket) through a
// tracker that lets the address hold three (the third is the leecher's), and a
// browser-like peer of one of them connects.
// Stopping them leaves the tracker with no peer.
func TestClientsShareSocket(t *testing.T) {
	const torrents = 150
	srv, url := newTrackerServer(t, wsapi.Config{MaxConnsPerIP: 3})
	tr := newTransport(t, Config{})
	var seeded conns
	defer seeded.closeAll()
	var stops []func()
	stopAll := func() {
		for _, stop := range stops {
			stop()
		}
		stops = nil
	}
	defer stopAll()
	for i := range torrents {
		ih := bittorrent.InfoHash{byte(i), byte(i >> 8), 0xee}
		_, stop := runClient(t, ClientConfig{URL: url, InfoHash: ih, PeerID: peerID("agent"),
			Transport: tr, HandleConn: seeded.handle, Offers: 1, OfferTTL: time.Minute})
		stops = append(stops, stop)
	}
	testenv.WaitFor(t, 30*time.Second, "every torrent announced", func() error {
		if n, seeders, _ := srv.Totals(); n != torrents || seeders != torrents {
			return fmt.Errorf("%d torrents, %d seeders on the tracker", n, seeders)
		}
		return nil
	})
	tr.mu.Lock()
	socks := len(tr.sockets[url])
	tr.mu.Unlock()
	if socks != 2 {
		t.Errorf("%d sockets to the tracker for %d torrents, want 2", socks, torrents)
	}

	// A leecher of torrent 120 (on the second socket) meets the seeder.
	var leecher conns
	defer leecher.closeAll()
	_, stopLeecher := runClient(t, ClientConfig{URL: url, InfoHash: bittorrent.InfoHash{120, 0, 0xee}, PeerID: peerID("browser"),
		Transport: newTransport(t, Config{}), HandleConn: leecher.handle, Left: func() int64 { return 1 }, Offers: 2})
	defer stopLeecher()
	exchange(t, &seeded, &leecher, "piece")

	stopLeecher()
	stopAll()
	testenv.WaitFor(t, 30*time.Second, "the tracker's peers gone", func() error {
		if n, seeders, leechers := srv.Totals(); n+seeders+leechers != 0 {
			return fmt.Errorf("%d torrents, %d seeders, %d leechers", n, seeders, leechers)
		}
		return nil
	})
	tr.mu.Lock()
	left := len(tr.sockets)
	tr.mu.Unlock()
	if left != 0 {
		t.Errorf("%d tracker URLs still have sockets after every client stopped", left)
	}
}

// TestTransportClose: Close closes the offers, the connections opening, the connections
// handed out and the tracker sockets of a transport, and its goroutines end: the process is
// back to its file descriptors and goroutines from before.
func TestTransportClose(t *testing.T) {
	url := newTracker(t, wsapi.Config{})
	// One cycle first, so that what pion starts once per process is not counted as a leak.
	a0, b0 := newTransport(t, Config{}), newTransport(t, Config{})
	c1, c2 := pair(t, a0, b0)
	c1.Close()
	c2.Close()
	a0.Close()
	b0.Close()
	runtime.GC()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a, b := newTransport(t, Config{Metrics: m}), newTransport(t, Config{Metrics: m})
	ac, bc := pair(t, a, b) // handed out, never closed by the test
	var pending []*Offer
	for range 3 {
		o, err := a.Offer(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, o)
	}
	var handled conns
	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	cl, err := NewClient(ClientConfig{URL: url, InfoHash: bittorrent.InfoHash{7}, PeerID: peerID("closing"),
		Transport: a, HandleConn: handled.handle, Offers: 2})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runErr <- cl.Run(context.Background()) // never cancelled: Close ends it
	}()
	testenv.WaitFor(t, 30*time.Second, "the client's offers made", func() error {
		if n := testutil.ToFloat64(m.peers); n < 2+3+2 {
			return fmt.Errorf("%v PeerConnections", n)
		}
		return nil
	})

	a.Close()
	wg.Wait()
	if err := <-runErr; !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	ac.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := ac.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a connection of a closed transport: %v, want it closed", err)
	}
	if _, err := a.Offer(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("offer after Close: %v, want ErrClosed", err)
	}
	for _, o := range pending {
		o.Close() // closed already: harmless
	}
	bc.Close()
	b.Close()
	settled(t, fds, goroutines)
	if g := testutil.ToFloat64(m.peers); g != 0 {
		t.Errorf("peer connections gauge = %v after Close, want 0", g)
	}
}
