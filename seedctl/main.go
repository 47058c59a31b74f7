// Command seedctl is the seeding side of webswarm: it makes, shows, verifies and publishes
// .torrent files (the successor of mainline btmakemetafile), and seeds and downloads them
// headlessly (the successor of btdownloadheadless).
//
//	seedctl make PATH... [-o OUT.torrent] [--tracker URL]... [--web-seed URL]...
//	seedctl verify TORRENT DATA
//	seedctl show TORRENT
//	seedctl publish FILE --site https://example.org [--docroot DIR] [--page] [--html]
//	seedctl seed TORRENT [--data DIR]
//	seedctl get TORRENT|URL|MAGNET [--out DIR]
//	seedctl agent --dir DIR [--state DIR] [--metrics ADDR]
//	seedctl status | list | add | remove | pause | resume | verify | rescan
//
// Flags may be spelled with dashes or underscores (--web-seed, --web_seed); seedctl --version
// prints the version.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/webswarm/webswarm/internal/version"
)

// exitError carries a specific exit status (verify: 1 = data does not match).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "seedctl",
		Short:         "Make, check, publish, seed and download .torrent files",
		Long:          "seedctl makes, shows, verifies and publishes .torrent files for the webswarm tracker, seeds and\ndownloads them headlessly, and runs an agent seeding a whole directory.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("seedctl (webswarm) {{.Version}}\n")
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	root.AddCommand(newMakeCmd(), newVerifyCmd(), newShowCmd(), newPublishCmd(), newSeedCmd(), newGetCmd(), newAgentCmd(), newManCmd())
	root.AddCommand(controlCmds()...)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	// Mainline wrote durations as plain seconds (--display_interval 0.5): accept both.
	root.SetArgs(normalizeDurationArgs(os.Args[1:], "display-interval", "rerequest-interval", "seed-time"))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// Interrupted: nothing was written (outputs are renamed into place only when done).
		fmt.Fprintln(os.Stderr, "seedctl: interrupted, nothing written")
		os.Exit(130)
	}
	fmt.Fprintf(os.Stderr, "seedctl: %s\n", errorText(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

// inUse says which flag moves a listener whose address another program already holds.
func inUse(err error, flags string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (another program listens there; choose another address with %s)", err, flags)
	}
	return err
}

// didYouMean starts cobra's suggestions for a mistyped command.
const didYouMean = "\n\nDid you mean this?\n"

// errorText is an error message for stderr: one line, except that cobra's "Did you mean
// this?" and its suggestions stay on lines of their own below it, where a reader sees them.
func errorText(msg string) string {
	first, suggestions, ok := strings.Cut(msg, didYouMean)
	if !ok {
		return oneLine(msg)
	}
	var b strings.Builder
	b.WriteString(oneLine(first))
	b.WriteString("\nDid you mean this?")
	for _, s := range strings.Fields(suggestions) {
		b.WriteString("\n\t" + s)
	}
	return b.String()
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
