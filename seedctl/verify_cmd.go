package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/agent/api"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

func newVerifyCmd() *cobra.Command {
	var asJSON, quiet bool
	var workers int
	var af agentFlags
	var lf limitFlags
	cmd := &cobra.Command{
		Use:   "verify TORRENT DATA | verify NAME...",
		Short: "Check a payload against a .torrent, piece by piece",
		Long: "Check every piece of the payload under DATA (the directory that holds the torrent's file or top\n" +
			"folder, like a client's save path). Reports bad pieces and the files they touch, and missing, short or\n" +
			"long files. Hybrid torrents are checked against both their v1 and v2 hashes.\n\n" +
			"Exit status: 0 everything matches, 1 the data does not match, 2 the check could not run.\n\n" +
			"Given torrents by name, info-hash or unique info-hash prefix instead (not a .torrent file and a\n" +
			"directory), it asks the running agent to re-check them.\n\n" + agentFlagsHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !localVerify(args) {
				return af.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
					return ctlAction(ctx, cmd, args, c, "verify", "queued for a re-check:")
				})
			}
			lim, err := lf.limits()
			if err != nil {
				return &exitError{2, err}
			}
			t, err := lim.Load(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			var p metafile.Progress
			stop := showProgress("verifying", &p, quiet || asJSON)
			rep, err := metafile.Verify(cmd.Context(), t, args[1], metafile.VerifyOptions{Workers: workers, Progress: &p})
			stop()
			if err != nil {
				return &exitError{2, err}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return &exitError{2, err}
				}
			} else {
				printReport(w, t, rep)
			}
			if !rep.OK {
				return &exitError{1, fmt.Errorf("%s does not match %s: %d of %d pieces bad, %d file problems", args[1], args[0], len(rep.Bad), rep.Pieces, len(rep.Problems))}
			}
			return nil
		},
	}
	cmd.ValidArgsFunction = completeTorrent
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	cmd.Flags().IntVar(&workers, "workers", 0, "hashing threads (default: one per CPU, at most 16)")
	af.register(cmd)
	lf.register(cmd.Flags())
	return cmd
}

// localVerify reports whether args are "TORRENT DATA" (a .torrent file and a directory) rather
// than names of the agent's torrents: two arguments of which the first is a file or is
// spelled like one (a path or a .torrent name — so that a missing file gets the local error,
// not "no agent"), or the second is a directory.
func localVerify(args []string) bool {
	if len(args) != 2 {
		return false
	}
	if st, err := os.Stat(args[0]); err == nil && st.Mode().IsRegular() {
		return true
	}
	if strings.HasSuffix(args[0], ".torrent") || strings.ContainsRune(args[0], os.PathSeparator) {
		return true
	}
	st, err := os.Stat(args[1])
	return err == nil && st.IsDir()
}

func printReport(w io.Writer, t *metafile.Torrent, r *metafile.Report) {
	for _, p := range r.Problems {
		switch p.Problem {
		case "short", "long":
			fmt.Fprintf(w, "%-8s %s: %d bytes, torrent says %d\n", p.Problem, metafile.Escape(p.Path), p.Got, p.Want)
		default:
			fmt.Fprintf(w, "%-8s %s (%d bytes) %s\n", p.Problem, metafile.Escape(p.Path), p.Want, p.Detail)
		}
	}
	if len(r.Bad) > 0 {
		fmt.Fprintf(w, "bad pieces: %s\n", r.BadRanges)
		for _, f := range r.Files {
			fmt.Fprintf(w, "  %s: %d bad pieces\n", metafile.Escape(f.Path), f.BadPieces)
		}
	}
	if r.OK {
		fmt.Fprintf(w, "OK %s: all %d pieces match (%s)\n", metafile.Escape(t.Name), r.Pieces, metafile.FormatSize(r.Checked))
	} else {
		fmt.Fprintf(w, "FAILED %s: %d of %d pieces good\n", metafile.Escape(t.Name), r.Good, r.Pieces)
	}
}
