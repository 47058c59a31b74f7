package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"
)

// newGetCmd is seedctl get: download from a .torrent, its URL or a magnet link, verify, then
// seed (runPeer does the work; get_magnet.go fetches a magnet link's metadata).
func newGetCmd() *cobra.Command {
	var f peerFlags
	var out string
	var seedTime time.Duration
	var seedRatio float64
	var exitOnComplete bool
	cmd := &cobra.Command{
		Use:   "get TORRENT|URL|MAGNET [--out DIR]",
		Short: "Download a torrent, verify it, then seed",
		Long: "get downloads into DIR (resuming an earlier, interrupted download), verifies every piece, then seeds\n" +
			"until interrupted, for --seed-time, until --seed-ratio, or exits at once with --exit-on-complete.\n" +
			"The torrent may be a file, an http(s) URL of a .torrent, or a magnet link with tr= trackers (the\n" +
			"metadata is then fetched from peers, BEP 9). Web seeds (BEP 19) are used together with peers.",
		Example: "  seedctl get https://example.org/big.iso.torrent --out /srv/mirror\n" +
			"  seedctl get 'magnet:?xt=urn:btih:...&tr=https://example.org/announce' --exit-on-complete",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if seedTime < 0 || seedRatio < 0 {
				return errors.New("--seed-time and --seed-ratio must not be negative")
			}
			src, err := sourceArg(args, f.url)
			if err != nil {
				return err
			}
			g := getOptions{seedTime: seedTime, seedRatio: seedRatio, exitOnComplete: exitOnComplete}
			return runPeer(cmd, &f, src, out, true, g)
		},
	}
	f.register(cmd, "fast")
	fl := cmd.Flags()
	fl.StringVar(&out, "out", ".", "directory to download into")
	fl.DurationVar(&seedTime, "seed-time", 0, "after completion, seed this long then exit (0 = until interrupted)")
	fl.Float64Var(&seedRatio, "seed-ratio", 0, "after completion, seed until uploaded/size reaches this, then exit")
	fl.BoolVar(&exitOnComplete, "exit-on-complete", false, "exit as soon as the download is complete and verified")
	cmd.ValidArgsFunction = completeTorrent
	return cmd
}

// getOptions are get's own flags.
type getOptions struct {
	seedTime       time.Duration
	seedRatio      float64
	exitOnComplete bool
}

// seededEnough reports whether a download completed at completedAt has been seeded as long
// (--seed-time) or as much (--seed-ratio of size uploaded) as asked.
func (g getOptions) seededEnough(completedAt time.Time, uploaded, size int64) bool {
	if g.seedTime > 0 && time.Since(completedAt) >= g.seedTime {
		return true
	}
	return g.seedRatio > 0 && size > 0 && float64(uploaded)/float64(size) >= g.seedRatio
}
