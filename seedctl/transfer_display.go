package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// This file is seed's and get's live display of one transfer (mainline btdownloadheadless's
// status block); seedctl status, the agent's summary, is in control_cmd.go.

// transferView is one refresh of the seed/get status display: the fields of mainline
// btdownloadheadless's block, plus peers and tracker state.
type transferView struct {
	Name         string  `json:"name"`
	InfoHash     string  `json:"info_hash"`
	Size         int64   `json:"size"`
	State        string  `json:"state"` // checking, downloading, seeding, missing, stopping
	Percent      float64 `json:"percent_done"`
	ETA          float64 `json:"eta_seconds"` // -1 unknown, 0 done
	SaveTo       string  `json:"download_to"`
	DownloadRate float64 `json:"download_rate"` // bytes/s
	UploadRate   float64 `json:"upload_rate"`
	Downloaded   int64   `json:"downloaded"`
	Uploaded     int64   `json:"uploaded"`
	Peers        int     `json:"peers"`
	Seeds        int     `json:"seeds"`
	WebRTCPeers  int     `json:"webrtc_peers"`      // how many of Peers are WebRTC (browsers)
	Tracker      string  `json:"tracker,omitempty"` // last failure or warning, empty when fine
}

// shareRating is uploaded/downloaded as mainline prints it.
func (v *transferView) shareRating() string {
	switch {
	case v.Downloaded == 0 && v.Uploaded == 0:
		return "0.000"
	case v.Downloaded == 0:
		return "oo"
	}
	return fmt.Sprintf("%.3f", float64(v.Uploaded)/float64(v.Downloaded))
}

// timeLeft formats the ETA as mainline does, with "Download Succeeded!" once done.
func (v *transferView) timeLeft() string {
	switch {
	case v.State == "checking":
		return "checking existing data"
	case v.Percent >= 100:
		return "Download Succeeded!"
	case v.ETA < 0 || math.IsInf(v.ETA, 0) || math.IsNaN(v.ETA):
		return "unknown"
	}
	return (time.Duration(v.ETA) * time.Second).String()
}

// transferLines renders the block: labels padded to 15 columns, as btdownloadheadless.
func transferLines(v *transferView) []string {
	row := func(label, value string) string { return fmt.Sprintf("%-15s%s", label+":", value) }
	peers := fmt.Sprintf("%d (%d seeds)", v.Peers, v.Seeds)
	if v.WebRTCPeers > 0 {
		peers = fmt.Sprintf("%d (%d seeds, %d webrtc)", v.Peers, v.Seeds, v.WebRTCPeers)
	}
	lines := []string{
		row("saving", fmt.Sprintf("%s (%s)", v.Name, metafile.FormatSize(v.Size))),
		row("percent done", fmt.Sprintf("%.1f", v.Percent)),
		row("time left", v.timeLeft()),
		row("download to", v.SaveTo),
		row("download rate", fmt.Sprintf("%.2f kB/s", v.DownloadRate/1000)),
		row("upload rate", fmt.Sprintf("%.2f kB/s", v.UploadRate/1000)),
		row("download total", fmt.Sprintf("%.1f MiB", float64(v.Downloaded)/(1<<20))),
		row("upload total", fmt.Sprintf("%.1f MiB", float64(v.Uploaded)/(1<<20))),
		row("share rating", v.shareRating()),
		row("peers", peers),
	}
	if v.Tracker != "" {
		lines = append(lines, row("tracker", v.Tracker))
	}
	return lines
}

// transferLine is the one-line form written when the output is not a terminal.
func transferLine(v *transferView) string {
	line := fmt.Sprintf("%s %s %.1f%% down %.2f kB/s up %.2f kB/s total down %.1f MiB up %.1f MiB ratio %s peers %d seeds %d",
		v.State, v.Name, v.Percent, v.DownloadRate/1000, v.UploadRate/1000,
		float64(v.Downloaded)/(1<<20), float64(v.Uploaded)/(1<<20), v.shareRating(), v.Peers, v.Seeds)
	if v.WebRTCPeers > 0 {
		// Last, so that a script reading the fields before it is not disturbed.
		line += fmt.Sprintf(" webrtc %d", v.WebRTCPeers)
	}
	return line
}

// transferPrinter writes successive views in one of three modes.
type transferPrinter struct {
	w     io.Writer
	mode  string // "tty", "plain" or "json"
	drawn int    // lines drawn last time (tty), to redraw in place
	enc   *json.Encoder
}

func newTransferPrinter(w io.Writer, mode string) *transferPrinter {
	p := &transferPrinter{w: w, mode: mode}
	if mode == "json" {
		p.enc = json.NewEncoder(w)
	}
	return p
}

// Print writes v: in place on a terminal (cursor up and clear), as one line otherwise.
func (p *transferPrinter) Print(v *transferView) error {
	switch p.mode {
	case "json":
		return p.enc.Encode(v)
	case "tty":
		var b strings.Builder
		if p.drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
		}
		lines := transferLines(v)
		for _, l := range lines {
			b.WriteString("\x1b[2K")
			b.WriteString(l)
			b.WriteByte('\n')
		}
		// A line that went away (the tracker message) is cleared too.
		for i := len(lines); i < p.drawn; i++ {
			b.WriteString("\x1b[2K\n")
		}
		p.drawn = max(len(lines), p.drawn)
		_, err := io.WriteString(p.w, b.String())
		return err
	default:
		_, err := fmt.Fprintln(p.w, transferLine(v))
		return err
	}
}

// outputMode picks the status form: JSON lines, in-place block on a terminal, else lines.
func outputMode(w io.Writer, asJSON bool) string {
	if asJSON {
		return "json"
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "tty"
	}
	return "plain"
}

// viewOf turns a job's stats into the status view.
func viewOf(t *metafile.Torrent, name, saveTo string, st job.Stats) transferView {
	v := transferView{
		Name:         name,
		InfoHash:     fmt.Sprintf("%x", t.InfoHash),
		Size:         t.Layout.Total,
		State:        string(st.State),
		SaveTo:       saveTo,
		DownloadRate: float64(st.Session.DownloadRate),
		UploadRate:   float64(st.Session.UploadRate),
		Downloaded:   st.Downloaded,
		Uploaded:     st.Uploaded,
		Peers:        st.Session.Peers,
		Seeds:        st.Session.Seeds,
		WebRTCPeers:  st.Session.WebRTCPeers,
		ETA:          -1,
	}
	switch {
	case st.State == job.Checking && st.Check.Total > 0 && st.Session.NumPieces == 0:
		// The check at start; a seed re-checking changed files shows its verified pieces.
		v.Percent = 100 * float64(st.Check.Done) / float64(st.Check.Total)
	case st.Session.NumPieces > 0:
		if t.Layout.Total > 0 {
			v.Percent = 100 * float64(t.Layout.Total-st.Session.Left) / float64(t.Layout.Total)
		}
		if st.Session.Left == 0 {
			v.Percent, v.ETA = 100, 0
		} else if st.Session.DownloadRate > 0 {
			v.ETA = float64(st.Session.Left) / float64(st.Session.DownloadRate)
		}
	}
	switch {
	case st.Tracker.Failure != "":
		v.Tracker = "failure: " + st.Tracker.Failure
	case st.Tracker.Err != nil:
		v.Tracker = "error: " + trackerProblem(st.Tracker.Err)
	case st.Tracker.Warning != "":
		v.Tracker = "warning: " + st.Tracker.Warning
	}
	return v
}

// trackerProblem shortens an announce error for the status line: a failed HTTP request
// names the tracker's host and the cause, not the whole announce URL with its query.
func trackerProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return host + ": " + ue.Err.Error()
	}
	return err.Error()
}
