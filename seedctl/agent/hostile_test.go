package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// counter sums the series of the counter or gauge name whose label (if given) has value.
func counter(t *testing.T, reg *prometheus.Registry, name, lname, value string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range gather(t, reg)[name].GetMetric() {
		if lname != "" && label(m, lname) != value {
			continue
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// Issue 12, items 12 and 13: a FIFO and a link to /dev/zero named *.torrent, and a torrent
// over the limits, must neither block the agent nor cost a parse at every rescan; a torrent
// added after them is seeded, and Run ends promptly.
func TestHostileTorrentFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.torrent"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.torrent")); err != nil {
		t.Fatal(err)
	}
	big, _ := makeTorrent(t, dir, "big.iso", "") // 4 pieces: over the limit of 3 below
	bad := filepath.Join(dir, "big.iso.torrent")
	if err := os.WriteFile(bad, big, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, dir)
	cfg.Registry = reg
	cfg.TorrentLimits = metafile.Limits{MaxPieces: 3}
	r := start(t, cfg)

	refused := func(reason string) float64 {
		return counter(t, reg, "webswarm_seed_torrent_files_refused_total", "reason", reason)
	}
	waitUntil(t, "three refusals", func() bool {
		return refused(RefusedNotRegular) == 2 && refused(RefusedLimit) == 1
	})
	// A torrent within the limits (2 pieces), dropped in after the hostile files, is seeded.
	small := filepath.Join(dir, "small")
	payload(t, small, "small", 64<<10)
	m, err := metafile.Make(context.Background(), metafile.MakeOptions{Paths: []string{small}, PieceLength: 32 << 10, NoDate: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small+".torrent", m.Torrent, 0o644); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, bittorrent.InfoHash(m.InfoHash).String(), Seeding)

	// Rescans look at the refused files but read none of them again.
	for i := 1; i <= 3; i++ {
		before := counter(t, reg, "webswarm_seed_torrent_files_skipped_total", "", "")
		r.Rescan()
		waitUntil(t, "a rescan skipping the refused files", func() bool {
			return counter(t, reg, "webswarm_seed_torrent_files_skipped_total", "", "") >= before+3
		})
	}
	if got := refused(RefusedNotRegular) + refused(RefusedLimit); got != 3 {
		t.Errorf("refusals after three rescans: %v, want still 3 (refused files read again)", got)
	}
	if got := counter(t, reg, "webswarm_seed_torrent_files_bad", "", ""); got != 3 {
		t.Errorf("webswarm_seed_torrent_files_bad = %v, want 3", got)
	}
	// A refused file that changes is read again.
	if err := os.WriteFile(bad, append(big, 'x'), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Rescan()
	waitUntil(t, "the changed file read again", func() bool { return refused(RefusedMalformed) == 1 })

	// Through the control API a FIFO is an invalid torrent, answered at once.
	fifo := filepath.Join(dir, "fifo.torrent")
	err = testenv.NotBlockedByFIFO(t, fifo, func() error {
		_, err := r.Add(context.Background(), fifo, "")
		return err
	})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Add(fifo): %v, want ErrInvalid", err)
	}
	r.stop(t)
}
