package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

func newVerifyCmd() *cobra.Command {
	var asJSON, quiet bool
	var workers int
	cmd := &cobra.Command{
		Use:   "verify TORRENT DATA",
		Short: "Check a payload against a .torrent, piece by piece",
		Long: "Check every piece of the payload under DATA (the directory that holds the torrent's file or top\n" +
			"folder, like a client's save path). Reports bad pieces and the files they touch, and missing, short or\n" +
			"long files. Hybrid torrents are checked against both their v1 and v2 hashes.\n\n" +
			"Exit status: 0 everything matches, 1 the data does not match, 2 the check could not run.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := metafile.Load(args[0])
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
	return cmd
}

func printReport(w io.Writer, t *metafile.Torrent, r *metafile.Report) {
	for _, p := range r.Problems {
		switch p.Problem {
		case "short", "long":
			fmt.Fprintf(w, "%-8s %s: %d bytes, torrent says %d\n", p.Problem, p.Path, p.Got, p.Want)
		default:
			fmt.Fprintf(w, "%-8s %s (%d bytes) %s\n", p.Problem, p.Path, p.Want, p.Detail)
		}
	}
	if len(r.Bad) > 0 {
		fmt.Fprintf(w, "bad pieces: %s\n", r.BadRanges)
		for _, f := range r.Files {
			fmt.Fprintf(w, "  %s: %d bad pieces\n", f.Path, f.BadPieces)
		}
	}
	if r.OK {
		fmt.Fprintf(w, "OK %s: all %d pieces match (%s)\n", t.Name, r.Pieces, metafile.FormatSize(r.Checked))
	} else {
		fmt.Fprintf(w, "FAILED %s: %d of %d pieces good\n", t.Name, r.Good, r.Pieces)
	}
}
