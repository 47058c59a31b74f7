package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

func newShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show TORRENT",
		Short: "Describe a .torrent: name, info hashes, size, pieces, files, trackers, web seeds, magnet",
		Long: "Describe a .torrent file. The file is read as untrusted input: file names that could reach outside a\n" +
			"save directory (absolute, '..', empty components, NUL) and absurd sizes are refused.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := metafile.Load(args[0])
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
