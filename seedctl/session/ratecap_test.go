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
			// The burst (a second's worth) goes at once; measure after it.
			testenv.WaitFor(t, 10*time.Second, "the burst", func() error {
				if d := leech.t.Stats().Downloaded; d < limit+limit/2 {
					return fmt.Errorf("%d bytes so far", d)
				}
				return nil
			})
			d0, t0 := leech.t.Stats().Downloaded, time.Now()
			const window = 2 * time.Second
			deadline := time.NewTimer(window)
			defer deadline.Stop()
			select {
			case <-deadline.C:
			case <-leech.t.Done():
				t.Fatalf("8 MiB done within %v of the burst at a cap of %d B/s", time.Since(t0), limit)
			}
			got := float64(leech.t.Stats().Downloaded-d0) / time.Since(t0).Seconds()
			t.Logf("%.0f B/s under a cap of %d B/s", got, limit)
			if got > 2*limit {
				t.Errorf("%.0f B/s: more than twice the cap of %d B/s", got, limit)
			}
			if got < limit/10 {
				t.Errorf("%.0f B/s: the capped transfer hardly moves (cap %d B/s)", got, limit)
			}
		})
	}
}
