package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// controlCmds returns the commands that control a running agent through its control API:
// status, list, add, remove, pause, resume and rescan. verify (verify_cmd.go) is both the local
// payload check and, given torrent names instead of a .torrent file and a directory, the
// agent's re-check.
func controlCmds() []*cobra.Command {
	return []*cobra.Command{
		newCtlStatusCmd(), newCtlListCmd(), newCtlAddCmd(),
		newCtlActionCmd("remove", "Stop seeding torrents (their files are kept)", "removed"),
		newCtlActionCmd("pause", "Pause torrents: no peers, no announces, until resumed", "paused"),
		newCtlActionCmd("resume", "Resume paused torrents", "resumed"),
		newCtlRescanCmd(),
	}
}

// agentFlags say where the agent is: its unix socket under --state, or --agent with a token.
type agentFlags struct {
	stateDir  string
	url       string
	tokenFile string
	timeout   time.Duration
}

const agentFlagsHelp = "The agent is found by its control socket in --state, which defaults to the same directory as the\n" +
	"agent's own --state, or at --agent http://127.0.0.1:PORT with the bearer token in --token-file."

func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.stateDir, "state", defaultStateDir(), "the agent's state directory, which holds its control socket")
	fl.StringVar(&f.url, "agent", "", "the agent's control API on loopback TCP, like http://127.0.0.1:PORT (instead of the socket)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token for --agent")
	fl.DurationVar(&f.timeout, "timeout", api.DefaultTimeout, "how long to wait for the agent's answer")
	_ = cmd.MarkFlagDirname("state")
	_ = cmd.MarkFlagFilename("token-file")
}

// client connects as the flags say.
func (f *agentFlags) client() (*api.Client, error) {
	if f.url == "" {
		if f.tokenFile != "" {
			return nil, errors.New("--token-file is for --agent; the control socket needs no token")
		}
		return api.NewUnixClient(agent.SocketPath(f.stateDir), f.timeout), nil
	}
	if f.tokenFile == "" {
		return nil, fmt.Errorf("--agent %s needs --token-file", f.url)
	}
	tok, err := api.ReadTokenFile(f.tokenFile)
	if err != nil {
		return nil, err
	}
	return api.NewTCPClient(f.url, tok, f.timeout)
}

// explain adds what to do to the errors a user can act on.
func (f *agentFlags) explain(err error) error {
	switch {
	case errors.Is(err, api.ErrNoAgent) && f.url == "":
		hint := "seedctl agent --dir DIR"
		if f.stateDir != defaultStateDir() {
			hint += " --state " + f.stateDir
		}
		return fmt.Errorf("%w (start one with %s, or name its state directory with --state)", err, hint)
	case errors.Is(err, api.ErrNoAgent):
		return fmt.Errorf("%w (is the agent running with its control API on that address?)", err)
	case errors.Is(err, api.ErrUnauthorized):
		return fmt.Errorf("%w: the agent refused the token in %s", err, f.tokenFile)
	}
	return err
}

// run connects and calls fn with the client, explaining its error.
func (f *agentFlags) run(ctx context.Context, fn func(context.Context, *api.Client) error) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return f.explain(fn(ctx, c))
}

// newCtlCmd makes a command that finds the agent as its flags say and runs fn with a client.
func newCtlCmd(use, short, long string, args cobra.PositionalArgs, fn func(ctx context.Context, cmd *cobra.Command, args []string, c *api.Client) error) *cobra.Command {
	var af agentFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n\n" + agentFlagsHelp,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return af.run(cmd.Context(), func(ctx context.Context, c *api.Client) error { return fn(ctx, cmd, args, c) })
		},
	}
	af.register(cmd)
	return cmd
}

func newCtlStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := newCtlCmd("status", "Show the running agent's summary",
		"status shows the running agent's summary: its directories, torrents by state, peers and upload.", cobra.NoArgs,
		func(ctx context.Context, cmd *cobra.Command, _ []string, c *api.Client) error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), st)
			}
			printAgentStatus(cmd.OutOrStdout(), &st, c.Target(), time.Now())
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as a JSON object")
	return cmd
}

func printAgentStatus(w io.Writer, st *agent.Status, target string, now time.Time) {
	row := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-11s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	up := "unknown"
	if !st.Started.IsZero() {
		up = fmt.Sprintf("up %s (since %s)", now.Sub(st.Started).Round(time.Second), st.Started.Local().Format(time.DateTime))
	}
	row("agent", "%s on %s, %s", printable(st.Version), target, up)
	row("directory", "%s", printable(st.Dir))
	row("state", "%s", printable(st.StateDir))
	row("peer port", "%d", st.ListenPort)
	var parts []string
	seen := 0
	for _, s := range [...]agent.State{agent.Seeding, agent.Downloading, agent.Checking, agent.Queued, agent.Paused, agent.Error} {
		if n := st.ByState[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
			seen += n
		}
	}
	if other := st.Torrents - seen; other > 0 && len(st.ByState) > 0 {
		parts = append(parts, fmt.Sprintf("%d other", other))
	}
	byState := ""
	if len(parts) > 0 {
		byState = " (" + strings.Join(parts, ", ") + ")"
	}
	row("torrents", "%d%s", st.Torrents, byState)
	row("peers", "%s", peersCell(st.Peers, st.WebRTC))
	row("upload", "%s/s, %s uploaded", metafile.FormatSize(st.UploadRate), metafile.FormatSize(st.Uploaded))
}

func newCtlListCmd() *cobra.Command {
	var asJSON bool
	cmd := newCtlCmd("list", "List the running agent's torrents",
		"list prints the agent's torrents as a table: name, size, state, peers, upload rate, uploaded and ratio\n"+
			"(uploaded / size), with the reason for each torrent in error or with a tracker problem below it.\n"+
			"--json prints an array of objects with info_hash, name, state (checking, queued, seeding, downloading,\n"+
			"paused or error) and the figures.", cobra.NoArgs,
		func(ctx context.Context, cmd *cobra.Command, _ []string, c *api.Client) error {
			l, err := c.List(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if l == nil {
					l = []agent.TorrentInfo{}
				}
				return writeJSONOut(cmd.OutOrStdout(), l)
			}
			return printTorrentTable(cmd.OutOrStdout(), l)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// maxNameWidth keeps the table readable with long names; --json has them whole.
const maxNameWidth = 48

// peersCell is a peer count, with how many are WebRTC (browsers) when any are.
func peersCell(peers, webrtc int) string {
	if webrtc == 0 {
		return strconv.Itoa(peers)
	}
	return fmt.Sprintf("%d (%d webrtc)", peers, webrtc)
}

func printTorrentTable(w io.Writer, l []agent.TorrentInfo) error {
	if len(l) == 0 {
		_, err := fmt.Fprintln(w, "no torrents")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tSTATE\tPEERS\tUP RATE\tUPLOADED\tRATIO")
	var notes []string
	for _, t := range l {
		name := shorten(printable(t.Name), maxNameWidth)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/s\t%s\t%.2f\n", name, metafile.FormatSize(t.Size), stateCell(&t),
			peersCell(t.Peers, t.WebRTC), metafile.FormatSize(t.UploadRate), metafile.FormatSize(t.Uploaded), t.Ratio)
		if t.Error != "" {
			notes = append(notes, fmt.Sprintf("%s (%s): %s", name, t.InfoHash[:min(8, len(t.InfoHash))], printable(t.Error)))
		}
		if t.Tracker != "" {
			notes = append(notes, fmt.Sprintf("%s (%s): tracker: %s", name, t.InfoHash[:min(8, len(t.InfoHash))], printable(t.Tracker)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

// stateCell is the state, with the check's progress while checking.
func stateCell(t *agent.TorrentInfo) string {
	if t.State == agent.Checking && t.Progress > 0 && t.Progress < 1 {
		return fmt.Sprintf("checking %d%%", int(t.Progress*100))
	}
	return printable(string(t.State))
}

// printable replaces control characters, which a hostile torrent name may carry to move the
// cursor or recolour the terminal, with '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// shorten cuts s to n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newCtlAddCmd() *cobra.Command {
	var data string
	cmd := newCtlCmd("add TORRENT... [--data DIR]", "Seed .torrent files with the running agent",
		"add asks the running agent to seed each TORRENT, with its payload in --data (default: beside the\n"+
			".torrent, or under the agent's own --data). Paths are passed to the agent as absolute paths, so the\n"+
			"agent's user must be able to read them.", cobra.MinimumNArgs(1),
		func(ctx context.Context, cmd *cobra.Command, args []string, c *api.Client) error {
			return forEach(cmd, args, func(path string) error {
				t, err := c.Add(ctx, path, data)
				if err != nil {
					return fmt.Errorf("add %s: %w", path, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s): %s\n", printable(t.Name), t.InfoHash, t.State)
				return nil
			})
		})
	cmd.Flags().StringVar(&data, "data", "", "directory holding the payload (file or top folder)")
	_ = cmd.MarkFlagDirname("data")
	return cmd
}

// newCtlActionCmd makes remove, pause, resume and verify: each names torrents by info-hash,
// unique info-hash prefix or name.
func newCtlActionCmd(name, short, done string) *cobra.Command {
	return newCtlCmd(name+" TORRENT...", short,
		short+".\n\nA TORRENT is named by its info-hash, a unique prefix of it (at least 4 hex digits), or its name as\n"+
			"seedctl list shows it.", cobra.MinimumNArgs(1),
		func(ctx context.Context, cmd *cobra.Command, args []string, c *api.Client) error {
			return ctlAction(ctx, cmd, args, c, name, done)
		})
}

// ctlAction asks the agent to remove, pause, resume or verify each named torrent.
func ctlAction(ctx context.Context, cmd *cobra.Command, args []string, c *api.Client, name, done string) error {
	return forEach(cmd, args, func(ref string) error {
		t, err := c.Find(ctx, ref)
		if err != nil {
			return err
		}
		ih, err := bittorrent.ParseInfoHash(t.InfoHash)
		if err != nil {
			return fmt.Errorf("the agent listed %q: %w", t.InfoHash, err)
		}
		switch name {
		case "remove":
			err = c.Remove(ctx, ih)
		case "pause":
			t, err = c.Pause(ctx, ih)
		case "resume":
			t, err = c.Resume(ctx, ih)
		case "verify":
			t, err = c.Verify(ctx, ih)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", name, ref, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s)\n", done, printable(t.Name), t.InfoHash)
		return nil
	})
}

// forEach runs fn for every argument, going on after a failure so that one bad name does not
// stop the rest; failures are printed as they happen and counted in the returned error. The
// agent not answering stops at once, since every other argument would fail the same way.
func forEach(cmd *cobra.Command, args []string, fn func(string) error) error {
	var first error
	failed := 0
	for _, a := range args {
		err := fn(a)
		if err == nil {
			continue
		}
		if errors.Is(err, api.ErrNoAgent) || errors.Is(err, api.ErrUnauthorized) || len(args) == 1 {
			return err
		}
		if first == nil {
			first = err
		}
		failed++
		fmt.Fprintf(cmd.ErrOrStderr(), "seedctl: %s\n", oneLine(err.Error()))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d failed: %w", failed, len(args), first)
	}
	return nil
}

func newCtlRescanCmd() *cobra.Command {
	return newCtlCmd("rescan", "Make the running agent rescan its directory now (as SIGHUP does)",
		"rescan makes the running agent walk its directory for new, changed and removed .torrent files now.", cobra.NoArgs,
		func(ctx context.Context, cmd *cobra.Command, _ []string, c *api.Client) error {
			if err := c.Rescan(ctx); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "rescan requested")
			return nil
		})
}

// addToAgent adds a torrent publish has just written to the agent the flags name, and says in
// one line what happened. No agent running is not an error; an agent that already seeds the
// torrent (its directory watch was quicker) is success.
func addToAgent(ctx context.Context, af *agentFlags, torrentPath, dataDir string) (string, error) {
	c, err := af.client()
	if err != nil {
		return "", err
	}
	defer c.Close()
	t, err := c.Add(ctx, torrentPath, dataDir)
	switch {
	case err == nil:
		return fmt.Sprintf("agent:        seeding it (%s, on %s)", t.State, c.Target()), nil
	case errors.Is(err, agent.ErrConflict):
		return fmt.Sprintf("agent:        already seeding it (on %s)", c.Target()), nil
	case errors.Is(err, api.ErrNoAgent):
		return fmt.Sprintf("agent:        not added: %v (--no-agent skips this)", err), nil
	}
	return "", fmt.Errorf("adding %s to the agent on %s: %w", filepath.Base(torrentPath), c.Target(), af.explain(err))
}
