package main

import "github.com/spf13/cobra"

// newSeedCmd is seedctl seed: check a complete payload and seed it (runPeer does the work).
func newSeedCmd() *cobra.Command {
	var f peerFlags
	var data string
	cmd := &cobra.Command{
		Use:   "seed TORRENT [--data DIR]",
		Short: "Seed a complete payload until interrupted",
		Long: "seed checks the payload against TORRENT and seeds it until interrupted (SIGINT/SIGTERM announce\n" +
			"\"stopped\" and save the resume record). DIR holds the torrent's file or top folder, like every client's\n" +
			"save path; by default the .torrent's own directory (the publish layout: big.iso beside big.iso.torrent).\n" +
			"Mainline's way works too: seedctl seed --url URL-of-.torrent --saveas PATH.",
		Example: "  seedctl seed /var/www/html/iso/big.iso.torrent\n" +
			"  seedctl seed --url https://example.org/big.iso.torrent --saveas ./big.iso",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := sourceArg(args, f.url)
			if err != nil {
				return err
			}
			return runPeer(cmd, &f, src, data, false, getOptions{})
		},
	}
	f.register(cmd, "fast")
	cmd.Flags().StringVar(&data, "data", "", "directory holding the torrent's file or top folder (default: the torrent's directory)")
	cmd.ValidArgsFunction = completeTorrent
	return cmd
}
