package e2e

// End-to-end tests of seedctl's peer listener and upload slots under cheap attacks (issue
// 12, items 5 and 7), against the built seedctl seed and agent: silent sockets that would
// hold every handshake slot, and connections that ask for pieces and never read them. In
// each, an honest seedctl get from 127.0.0.1 must complete during the attack. Helpers start
// with "cn".

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// cnHonestTimeout bounds the honest download during an attack. Without the limits the
// attacks hold it off for a minute or more (every handshake slot taken while the flood
// lasts; non-reading peers keep their slots until the 60 s write timeout).
const cnHonestTimeout = 40 * time.Second

// cnFlood keeps n silent connections from the loopback address from to addr open until the
// test ends: a connection the server closes is opened again, as an attacker would (at most
// one new connection a socket every 100 ms).
func cnFlood(t testing.TB, from, addr string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	for range n {
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
					stop := context.AfterFunc(ctx, func() { c.Close() })
					io.Copy(io.Discard, c) // until the server closes it
					stop()
					c.Close()
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
}

// cnFloodAll floods addr from 127.0.0.2 (80 sockets, more than every handshake slot) and
// from 127.0.0.3-5 (20 each).
func cnFloodAll(t testing.TB, addr string) {
	t.Helper()
	cnFlood(t, "127.0.0.2", addr, 80)
	for i := 3; i <= 5; i++ {
		cnFlood(t, fmt.Sprintf("127.0.0.%d", i), addr, 20)
	}
}

// cnHonestGet downloads torrent with seedctl get from 127.0.0.1 within cnHonestTimeout
// and checks the payload.
func cnHonestGet(t testing.TB, torrent, name string, payload []byte) {
	t.Helper()
	out := t.TempDir()
	start := time.Now()
	get := spStartSeedctl(t, t.TempDir(), "127.0.0.1", "get", torrent, "--out", out, "--exit-on-complete")
	spWaitExit(t, get, cnHonestTimeout)
	t.Logf("honest download during the attack: %v", time.Since(start).Round(time.Second))
	sameFile(t, filepath.Join(out, name), payload)
}

// cnMetric reads one sample of the Prometheus text at url.
func cnMetric(t testing.TB, url, sample string) float64 {
	t.Helper()
	v, err := monMetric(url, sample)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSeedctlIdleSocketFlood: silent sockets from four addresses, more than every
// handshake slot and renewed as they are closed, do not lock an honest peer out of seedctl
// seed or of the agent.
func TestSeedctlIdleSocketFlood(t *testing.T) {
	// The tracker's default interval and --min-peers 0: the seeders do not announce again
	// while the test runs, so they never learn the downloader's address and dial it; it
	// must come in through the flooded listener.
	tp := startTracker(t)
	src := t.TempDir()
	payload := writePayload(t, src, "flood.bin", 3<<20+99)
	torrent := filepath.Join(src, "flood.bin.torrent")
	scSeedctlOK(t, "", "make", filepath.Join(src, "flood.bin"), "-t", tp.Announce, "-o", torrent)

	t.Run("seed", func(t *testing.T) {
		metrics := net.JoinHostPort("127.0.0.7", strconv.Itoa(testenv.FreePort(t, "127.0.0.7")))
		seeder, port := spStartSeedctlPort(t, t.TempDir(), "127.0.0.7", "seed", torrent, "--data", src, "--metrics", metrics, "--min-peers", "0")
		spWaitState(t, seeder, "seeding", time.Minute)
		cnFloodAll(t, net.JoinHostPort("127.0.0.7", strconv.Itoa(port)))
		cnHonestGet(t, torrent, "flood.bin", payload)
		url := "http://" + metrics + "/metrics"
		if v := cnMetric(t, url, `webswarm_seed_connections_refused_total{reason="ip_handshakes"}`); v == 0 {
			t.Errorf("no connection refused for the per-address handshake limit")
		}
	})

	t.Run("agent", func(t *testing.T) {
		state := t.TempDir()
		port := testenv.FreePort(t, "127.0.0.8")
		metrics := net.JoinHostPort("127.0.0.8", strconv.Itoa(testenv.FreePort(t, "127.0.0.8")))
		testenv.Start(t, testenv.Build(t, "./seedctl"), "agent", "--dir", src, "--state", state,
			"--bind", "127.0.0.8", "--port", strconv.Itoa(port), "--rerequest-interval", "10s", "--metrics", metrics)
		agWaitStates(t, state, map[string]string{"flood.bin": "seeding"})
		cnFloodAll(t, net.JoinHostPort("127.0.0.8", strconv.Itoa(port)))
		cnHonestGet(t, torrent, "flood.bin", payload)
		if v := cnMetric(t, "http://"+metrics+"/metrics", `webswarm_seed_connections_refused_total{reason="ip_handshakes"}`); v == 0 {
			t.Errorf("no connection refused for the per-address handshake limit")
		}
	})
}

// cnHogs starts n peers from 127.0.0.2 that ask for blocks and never read them: each
// connects with a small receive window, says interested, reads until it is unchoked, then
// requests count blocks of 16 KiB over the first pieces (of pieceLength bytes) and reads
// nothing more until the test ends. Connections refused (a per-address limit) are left
// out: the attack goes on with the others.
func cnHogs(t testing.TB, addr string, ih [20]byte, n, count int, pieceLength uint32) {
	t.Helper()
	d := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); err != nil {
				return err
			}
			return serr
		},
	}
	var wg sync.WaitGroup
	var conns []*wire.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	for i := range n {
		var id bittorrent.PeerID
		copy(id[:], fmt.Sprintf("-HG0001-hog%09d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := wire.Dial(ctx, d, addr, &wire.Config{PeerID: id, Encryption: wire.Off}, bittorrent.InfoHash(ih))
		cancel()
		if err != nil {
			continue // refused
		}
		conns = append(conns, c)
		wg.Go(func() {
			w := wire.NewWriter(c.Writer)
			w.Interested()
			if w.Flush() != nil {
				return
			}
			r := wire.NewReader(c.Reader, c.Limits(wire.Reserved{}))
			var m wire.Message
			for m.ID != wire.Unchoke {
				if r.Read(&m) != nil {
					return // refused, or the test is over
				}
			}
			for b := range uint32(count) {
				off := b * wire.BlockSize
				w.Request(off/pieceLength, off%pieceLength, wire.BlockSize)
			}
			w.Flush() // and read nothing more
		})
	}
}

// TestSeedctlNonReadingPeers: 40 connections from one address ask for pieces and never
// read; an honest leecher from another address still downloads from seedctl seed. Without
// the limits the hogs hold every upload slot (regular slots until they receive their quota,
// which never comes) and the honest leecher waits for a lucky optimistic unchoke or the
// write timeout.
func TestSeedctlNonReadingPeers(t *testing.T) {
	tp := startTracker(t, trackerTestArgs...)
	src := t.TempDir()
	payload := writePayload(t, src, "hog.bin", 32<<20)
	torrent := filepath.Join(src, "hog.bin.torrent")
	scSeedctlOK(t, "", "make", filepath.Join(src, "hog.bin"), "-t", tp.Announce, "-o", torrent, "--piece-size", "256KiB")
	ih := readTorrent(t, torrent).InfoHash

	metrics := net.JoinHostPort("127.0.0.9", strconv.Itoa(testenv.FreePort(t, "127.0.0.9")))
	seeder, port := spStartSeedctlPort(t, t.TempDir(), "127.0.0.9", "seed", torrent, "--data", src, "--metrics", metrics)
	spWaitState(t, seeder, "seeding", time.Minute)
	addr := net.JoinHostPort("127.0.0.9", strconv.Itoa(port))
	cnHogs(t, addr, ih, 40, 500, 256<<10)
	cnHonestGet(t, torrent, "hog.bin", payload)
	url := "http://" + metrics + "/metrics"
	// The hogs' writes stay stuck after the honest peer is done; a hog whose slot went to
	// the honest peer for asking nothing new (the choker's Idle rule, which may see it a
	// tick before the stall check does) is counted stalled at a later tick.
	testenv.WaitFor(t, 30*time.Second, "an upload stall counted", func() error {
		if v := cnMetric(t, url, "webswarm_seed_upload_stalls_total"); v == 0 {
			return errors.New("webswarm_seed_upload_stalls_total is 0")
		}
		return nil
	})
	if v := cnMetric(t, url, `webswarm_seed_connections_refused_total{reason="ip_limit"}`); v == 0 {
		t.Errorf("no connection refused for the per-address limit")
	}
}
