package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// makeFlags are the flags make and publish share.
type makeFlags struct {
	output        string
	trackers      []string
	webSeeds      []string
	pieceSize     string
	private       bool
	source        string
	comment       string
	name          string
	createdBy     string
	noDate        bool
	exclude       []string
	includeHidden bool
	hybrid        bool
	force         bool
	json          bool
	quiet         bool
	workers       int
}

func (f *makeFlags) register(cmd *cobra.Command, publish bool) {
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "where to write the .torrent (default: NAME.torrent here; publish: beside FILE)")
	fl.StringArrayVarP(&f.trackers, "tracker", "t", nil, "announce URL; repeat for more tiers, separate URLs of one tier with ',' (BEP 12)")
	fl.StringArrayVarP(&f.webSeeds, "web-seed", "w", nil, "web seed URL (BEP 19); repeatable, ',' separates several")
	fl.StringVar(&f.pieceSize, "piece-size", "auto", "piece size: auto (the rule above), or a power of two from 16KiB to 16MiB (e.g. 256KiB, 4MiB, 1048576)")
	fl.BoolVarP(&f.private, "private", "p", false, "set the private flag (BEP 27: no DHT/PEX, tracker only)")
	fl.StringVarP(&f.source, "source", "s", "", "source string in the info dictionary (changes the info-hash)")
	fl.StringVarP(&f.comment, "comment", "c", "", "comment")
	fl.StringVar(&f.createdBy, "created-by", "", "\"created by\" value (default \""+metafile.DefaultCreatedBy+"\"; '-' leaves it out)")
	fl.BoolVarP(&f.noDate, "no-date", "d", false, "leave out the creation date: the same input gives a byte-identical torrent")
	fl.BoolVar(&f.hybrid, "hybrid", false, "make a BitTorrent v1+v2 hybrid (BEP 52): SHA-256 merkle trees, files aligned to pieces with pad files")
	fl.BoolVarP(&f.force, "force", "f", false, "overwrite an existing output file")
	fl.BoolVar(&f.json, "json", false, "print a JSON summary on stdout")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress output")
	fl.IntVar(&f.workers, "workers", 0, "hashing threads (default: one per CPU, at most 16)")
	if !publish {
		fl.StringVarP(&f.name, "name", "n", "", "torrent name (default: base name of PATH; required with several PATHs)")
		fl.StringArrayVar(&f.exclude, "exclude", nil, "skip files and directories whose name or path inside the torrent matches this glob; repeatable")
		fl.BoolVar(&f.includeHidden, "include-hidden", false, "include hidden files and directories (names starting with '.')")
	}
}

// options turns the flags into MakeOptions.
func (f *makeFlags) options(paths []string) (metafile.MakeOptions, error) {
	plen, err := metafile.ParsePieceLength(f.pieceSize)
	if err != nil {
		return metafile.MakeOptions{}, err
	}
	o := metafile.MakeOptions{
		Paths:         paths,
		Name:          f.name,
		PieceLength:   plen,
		Private:       f.private,
		Source:        f.source,
		Comment:       f.comment,
		CreatedBy:     f.createdBy,
		NoDate:        f.noDate,
		Exclude:       f.exclude,
		IncludeHidden: f.includeHidden,
		Hybrid:        f.hybrid,
		Workers:       f.workers,
	}
	for _, t := range f.trackers {
		var tier []string
		for _, u := range strings.Split(t, ",") {
			if u = strings.TrimSpace(u); u != "" {
				tier = append(tier, u)
			}
		}
		if len(tier) > 0 {
			o.Trackers = append(o.Trackers, tier)
		}
	}
	for _, w := range f.webSeeds {
		for _, u := range strings.Split(w, ",") {
			if u = strings.TrimSpace(u); u != "" {
				o.WebSeeds = append(o.WebSeeds, u)
			}
		}
	}
	return o, nil
}

func newMakeCmd() *cobra.Command {
	var f makeFlags
	cmd := &cobra.Command{
		Use:   "make PATH... [-o OUT.torrent]",
		Short: "Make a .torrent from a file or directory",
		Long: "Make a .torrent file from a file (single-file torrent), a directory or several PATHs (multi-file).\n\n" +
			"Piece size " + metafile.PieceSizeRule + ".\n\n" + metafile.WalkRule + "\n\n" +
			"The torrent is written to a temporary file and renamed into place: a failure never leaves a partial .torrent.",
		Example: "  seedctl make big.iso -t https://example.org/announce -w https://example.org/files/big.iso\n" +
			"  seedctl make photos/ --exclude '*.tmp' -o photos.torrent --no-date",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(args)
			if err != nil {
				return err
			}
			out := f.output
			if out == "" {
				name := f.name
				if name == "" {
					name = metafile.DefaultName(args[0])
				}
				out = name + ".torrent"
			}
			made, err := makeTorrent(cmd, &f, o, out)
			if err != nil {
				return err
			}
			return printMade(cmd.OutOrStdout(), &f, made, out, nil)
		},
	}
	f.register(cmd, false)
	return cmd
}

// makeTorrent checks that out can be written, hashes, and writes the torrent atomically.
func makeTorrent(cmd *cobra.Command, f *makeFlags, o metafile.MakeOptions, out string) (*metafile.Made, error) {
	if err := preflightOutput(out, f.force); err != nil {
		return nil, err
	}
	made, err := hashWithProgress(cmd.Context(), f, o, out)
	if err != nil {
		return nil, err
	}
	if err := metafile.WriteFile(out, made.Torrent, f.force); err != nil {
		return nil, err
	}
	if made.InfoHashV2 != [32]byte{} && !made.Single && len(o.WebSeeds) > 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "seedctl: warning: aria2 (1.36) asks web seeds for the pad files of a multi-file hybrid and fails (libtorrent copes); leave out --hybrid or the web seed if aria2 users matter")
	}
	return made, nil
}

// hashWithProgress makes the torrent that is to be written to out, showing the hashing's
// progress unless --quiet or --json. make and publish both hash this way.
func hashWithProgress(ctx context.Context, f *makeFlags, o metafile.MakeOptions, out string) (*metafile.Made, error) {
	var p metafile.Progress
	o.Progress = &p
	o.Output = out
	stop := showProgress("hashing", &p, f.quiet || f.json)
	defer stop()
	return metafile.Make(ctx, o)
}

// preflightOutput fails early (before hashing gigabytes) when out exists without force or its
// directory is not writable.
func preflightOutput(out string, force bool) error {
	if st, err := os.Stat(out); err == nil {
		if st.IsDir() {
			return fmt.Errorf("output %s is a directory", out)
		}
		if !force {
			return fmt.Errorf("%s exists (use --force to overwrite)", out)
		}
	}
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, ".seedctl-probe-*")
	if err != nil {
		return fmt.Errorf("cannot write to output directory: %w", err)
	}
	tmp.Close()
	os.Remove(tmp.Name())
	return nil
}

// madeJSON is make's --json output.
type madeJSON struct {
	Torrent     string `json:"torrent"`
	Name        string `json:"name"`
	InfoHash    string `json:"info_hash"`
	InfoHashV2  string `json:"info_hash_v2,omitempty"`
	TotalLength int64  `json:"total_length"`
	PieceLength int64  `json:"piece_length"`
	Pieces      int    `json:"pieces"`
	Files       int    `json:"files"`
	Magnet      string `json:"magnet"`
	// publish only
	TorrentURL string   `json:"torrent_url,omitempty"`
	WebSeed    string   `json:"web_seed,omitempty"`
	Tracker    string   `json:"tracker,omitempty"`
	HTML       string   `json:"html,omitempty"`
	WSTracker  string   `json:"ws_tracker,omitempty"`
	Page       string   `json:"page,omitempty"`     // --page: the file written
	PageURL    string   `json:"page_url,omitempty"` // --page: its URL
	Box        string   `json:"box,omitempty"`      // --html: the download box
	Warnings   []string `json:"warnings,omitempty"`
}

func madeSummary(made *metafile.Made, out string) (*madeJSON, error) {
	t, err := metafile.Parse(made.Torrent)
	if err != nil {
		return nil, fmt.Errorf("reading back the new torrent: %w", err)
	}
	j := &madeJSON{
		Torrent:     out,
		Name:        made.Name,
		InfoHash:    hex.EncodeToString(made.InfoHash[:]),
		TotalLength: made.TotalLength,
		PieceLength: made.PieceLength,
		Pieces:      made.Pieces,
		Files:       made.Files,
		Magnet:      t.Magnet(),
	}
	if t.HasV2 {
		j.InfoHashV2 = hex.EncodeToString(made.InfoHashV2[:])
	}
	return j, nil
}

func printMade(w io.Writer, f *makeFlags, made *metafile.Made, out string, extra func(*madeJSON)) error {
	j, err := madeSummary(made, out)
	if err != nil {
		return err
	}
	if extra != nil {
		extra(j)
	}
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	fmt.Fprintf(w, "wrote %s: %s, %s in %d pieces of %s\n", out, j.Name, metafile.FormatSize(j.TotalLength), j.Pieces, metafile.FormatSize(j.PieceLength))
	fmt.Fprintf(w, "info hash:    %s\n", j.InfoHash)
	if j.InfoHashV2 != "" {
		fmt.Fprintf(w, "info hash v2: %s\n", j.InfoHashV2)
	}
	fmt.Fprintf(w, "magnet:       %s\n", j.Magnet)
	return nil
}
