package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

func newShowCmd() *cobra.Command {
	var asJSON bool
	var lf limitFlags
	cmd := &cobra.Command{
		Use:   "show TORRENT",
		Short: "Describe a .torrent: name, info hashes, size, pieces, files, trackers, web seeds, magnet",
		Long: "Describe a .torrent file. The file is read as untrusted input: file names that could reach outside a\n" +
			"save directory (absolute, '..', empty components, NUL), two files at one path, piece lengths under 16 KiB\n" +
			"and torrents over the --max-torrent-* limits are refused. Control characters in names, comments and\n" +
			"URLs are printed escaped (\\x1b), so that a torrent cannot drive the terminal; --json escapes them too.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lim, err := lf.limits()
			if err != nil {
				return err
			}
			t, err := lim.Load(args[0])
			if err != nil {
				return err
			}
			s := metafile.Summarize(t)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), s.Text())
			return err
		},
	}
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeTorrent(c, args, s)
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	lf.register(cmd.Flags())
	return cmd
}

// completeTorrent completes a .torrent file as the first argument and a directory (DATA) as
// the second.
func completeTorrent(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return []string{"torrent"}, cobra.ShellCompDirectiveFilterFileExt
	}
	if len(args) == 1 {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
