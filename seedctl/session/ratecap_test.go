package session

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// TestRateCaps: a capped transfer moves data, and no faster than twice its cap, measured as
// bytes over a bounded window after the limiter's initial burst is spent. Lenient on purpose
// (a noisy machine can only make it slower); the cap is what must hold.
func TestRateCaps(t *testing.T) {
	const limit = 1 << 20 // bytes per second
	global := func() *rate.Limiter { return rate.NewLimiter(limit, limit) }
	for _, tc := range []struct {
		name        string
		seed, leech func(*Config)
	}{
		{"torrent upload cap at the seed", func(c *Config) { c.TorrentUploadRate = limit }, nil},
		{"torrent download cap at the leecher", nil, func(c *Config) { c.TorrentDownloadRate = limit }},
		{"global upload cap at the seed", func(c *Config) { c.UploadRate = global() }, nil},
		{"global download cap at the leecher", nil, func(c *Config) { c.DownloadRate = global() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 8<<20, 64<<10)
			seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off, cfg: tc.seed})
			lf, _ := f.leechFiles(t)
			leech := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: 'l', enc: wire.Off, cfg: tc.leech})
			leech.t.AddPeers([]netip.AddrPort{seed.addr})
			checkCapped(t, leech.t, limit, 2*time.Second)
		})
	}
}

// TestRateCapWebSeed: the download cap holds for web seeds too (a run takes its bytes from
// the limiter before it is fetched).
func TestRateCapWebSeed(t *testing.T) {
	const limit = 1 << 20
	f := newFixture(t, 8<<20, 64<<10)
	web := newWebServer(t, f)
	lf, _ := f.leechFiles(t)
	leech := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: 'l',
		cfg: func(c *Config) { c.WebSeeds, c.TorrentDownloadRate = []string{web.url()}, limit }})
	// Runs of a MiB arrive whole: a longer window evens out the steps.
	checkCapped(t, leech.t, limit, 3*time.Second)
}

// checkCapped measures tor's download rate over window once the limiter's burst (a second's
// worth) is spent, and fails when it is over twice limit or under a tenth of it.
func checkCapped(t *testing.T, tor *Torrent, limit int, window time.Duration) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "the burst", func() error {
		if d := tor.Stats().Downloaded; d < int64(limit+limit/2) {
			return fmt.Errorf("%d bytes so far", d)
		}
		return nil
	})
	d0, t0 := tor.Stats().Downloaded, time.Now()
	deadline := time.NewTimer(window)
	defer deadline.Stop()
	select {
	case <-deadline.C:
	case <-tor.Done():
		t.Fatalf("done within %v of the burst at a cap of %d B/s", time.Since(t0), limit)
	}
	got := float64(tor.Stats().Downloaded-d0) / time.Since(t0).Seconds()
	t.Logf("%.0f B/s under a cap of %d B/s", got, limit)
	if got > float64(2*limit) {
		t.Errorf("%.0f B/s: more than twice the cap of %d B/s", got, limit)
	}
	if got < float64(limit/10) {
		t.Errorf("%.0f B/s: the capped transfer hardly moves (cap %d B/s)", got, limit)
	}
}
