package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// peerFlags are the flags seed and get share, after mainline btdownloadheadless.
type peerFlags struct {
	maxUploads      int
	maxUploadRate   int // KiB/s
	maxDownloadRate int // KiB/s
	minPort         int
	maxPort         int
	bind            string
	ip              string
	rerequest       time.Duration
	minPeers        int
	maxInitiate     int
	maxConns        int
	display         time.Duration
	encryption      string
	metrics         string
	asJSON          bool
	quiet           bool
	check           string
	stateDir        string
	url             string
	saveAs          string
	numWant         int
	conns           connFlags
	limits          limitFlags
	payloadCheck    time.Duration
	webrtc          webrtcFlags
}

func (f *peerFlags) register(cmd *cobra.Command, checkDefault string) {
	fl := cmd.Flags()
	fl.IntVar(&f.maxUploads, "max-uploads", 7, "peers uploaded to at once (plus one optimistic slot)")
	fl.IntVar(&f.maxUploadRate, "max-upload-rate", 0, "upload cap in KiB/s (0 = unlimited)")
	fl.IntVar(&f.maxDownloadRate, "max-download-rate", 0, "download cap in KiB/s (0 = unlimited)")
	fl.IntVar(&f.minPort, "minport", 6881, "lowest port to listen on (the first free one in [minport, maxport] is used)")
	fl.IntVar(&f.maxPort, "maxport", 6999, "highest port to listen on")
	fl.StringVar(&f.bind, "bind", "", "address to listen on and connect from (default: all)")
	fl.StringVar(&f.ip, "ip", "", "address to give the tracker (default: the one it sees)")
	fl.DurationVar(&f.rerequest, "rerequest-interval", 300*time.Second, "tracker re-announce interval when it sets none")
	fl.IntVar(&f.minPeers, "min-peers", 20, "announce early while fewer peers than this are connected")
	fl.IntVar(&f.maxInitiate, "max-initiate", 35, "stop connecting out at this many peers")
	fl.IntVar(&f.maxConns, "max-connections", 80, "connection limit")
	fl.DurationVar(&f.display, "display-interval", 500*time.Millisecond, "status refresh interval")
	fl.StringVar(&f.encryption, "encryption", "prefer", "peer encryption (MSE): prefer, require or off")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9300)")
	fl.BoolVar(&f.asJSON, "json", false, "print status as one JSON object a line")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no status output")
	fl.StringVar(&f.check, "check", checkDefault, "payload check at start: full, fast (trust a clean resume record whose file sizes and times match) or none")
	fl.StringVar(&f.stateDir, "state", defaultStateDir(), "directory for resume records")
	fl.StringVar(&f.url, "url", "", "URL of the .torrent (mainline's --url)")
	fl.StringVar(&f.saveAs, "saveas", "", "the payload's path: file or top folder (mainline's --saveas)")
	fl.IntVar(&f.numWant, "numwant", 50, "peers to ask the tracker for")
	f.conns.register(cmd)
	f.limits.register(fl)
	f.webrtc.register(fl)
	fl.DurationVar(&f.payloadCheck, "payload-check-interval", session.DefaultPayloadCheckInterval,
		"how often a seed stats its payload files to find them changed (beside file notifications; 0 = notifications only)")
}

// defaultStateDir is $XDG_STATE_HOME/webswarm, else ~/.local/state/webswarm.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "webswarm")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "webswarm")
	}
	return ".webswarm"
}

// validate checks the flags and names the bad one.
func (f *peerFlags) validate() error {
	switch {
	case f.maxUploads < 1:
		return fmt.Errorf("--max-uploads %d: want at least 1", f.maxUploads)
	case f.maxUploadRate < 0:
		return fmt.Errorf("--max-upload-rate %d: want 0 (unlimited) or more", f.maxUploadRate)
	case f.maxDownloadRate < 0:
		return fmt.Errorf("--max-download-rate %d: want 0 (unlimited) or more", f.maxDownloadRate)
	case f.minPort < 1 || f.minPort > 65535:
		return fmt.Errorf("--minport %d: want 1-65535", f.minPort)
	case f.maxPort < f.minPort || f.maxPort > 65535:
		return fmt.Errorf("--maxport %d: want %d-65535", f.maxPort, f.minPort)
	case f.rerequest < time.Second:
		return fmt.Errorf("--rerequest-interval %s: want at least 1s", f.rerequest)
	case f.minPeers < 0 || f.maxInitiate < 0 || f.maxConns < 1:
		return errors.New("--min-peers, --max-initiate and --max-connections must not be negative")
	case f.display <= 0:
		return fmt.Errorf("--display-interval %s: want more than 0", f.display)
	case f.numWant < 0:
		return fmt.Errorf("--numwant %d: want 0 or more", f.numWant)
	case f.payloadCheck < 0:
		return fmt.Errorf("--payload-check-interval %s: want 0 (notifications only) or more", f.payloadCheck)
	}
	if err := f.conns.validate(); err != nil {
		return err
	}
	if err := f.webrtc.validate(); err != nil {
		return err
	}
	if _, err := f.limits.limits(); err != nil {
		return err
	}
	if f.bind != "" {
		if _, err := netip.ParseAddr(f.bind); err != nil {
			return fmt.Errorf("--bind %q: not an IP address", f.bind)
		}
	}
	if f.ip != "" {
		if _, err := netip.ParseAddr(f.ip); err != nil {
			return fmt.Errorf("--ip %q: not an IP address", f.ip)
		}
	}
	if _, err := wire.ParseEncryption(f.encryption); err != nil {
		return fmt.Errorf("--encryption %q: %w", f.encryption, err)
	}
	if _, err := resume.ParseMode(f.check); err != nil {
		return fmt.Errorf("--check %q: %w", f.check, err)
	}
	return nil
}
