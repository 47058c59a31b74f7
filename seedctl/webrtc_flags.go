package main

import (
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/webswarm/webswarm/seedctl/job"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/rtc"
)

// webrtcFlags are the WebRTC flags of seed and get: browsers reached through the torrent's
// ws:// and wss:// trackers.
type webrtcFlags struct {
	mode        string
	stun        []string
	maxPeers    int
	maxOffers   int
	torrentCap  int
	ports       string
	bind        string
	portMin     uint16
	portMax     uint16
	bindAddress netip.Addr
}

func (f *webrtcFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.mode, "webrtc", "auto", "serve browsers over WebRTC: on, off or auto (on when the torrent lists a ws:// or wss:// tracker)")
	fl.StringArrayVar(&f.stun, "stun", nil, "STUN server for WebRTC behind NAT, as stun:HOST:PORT (repeatable; none: host candidates only)")
	fl.IntVar(&f.maxPeers, "webrtc-max-peers", rtc.DefaultMaxPeers, "WebRTC peers of the process at once (connecting or connected; offers waiting for an answer are not counted)")
	fl.IntVar(&f.maxOffers, "webrtc-max-offers", rtc.DefaultMaxOffers, "WebRTC offers of the process waiting for an answer at once (each expires after 50 s)")
	fl.IntVar(&f.torrentCap, "webrtc-torrent-peers", rtc.DefaultTorrentPeers, "WebRTC peers of one torrent at once (connecting or connected)")
	fl.StringVar(&f.ports, "webrtc-ports", "", "UDP port range for WebRTC, MIN-MAX (default: any), so a firewall can allow it")
	fl.StringVar(&f.bind, "webrtc-bind", "", "the only local address WebRTC offers to peers (default: every address)")
}

// validate checks the flags and names the bad one.
func (f *webrtcFlags) validate() error {
	switch f.mode {
	case "on", "off", "auto":
	default:
		return fmt.Errorf("--webrtc %q: want on, off or auto", f.mode)
	}
	if f.maxPeers < 1 {
		return fmt.Errorf("--webrtc-max-peers %d: want at least 1", f.maxPeers)
	}
	if f.maxOffers < 1 {
		return fmt.Errorf("--webrtc-max-offers %d: want at least 1", f.maxOffers)
	}
	if f.torrentCap < 1 {
		return fmt.Errorf("--webrtc-torrent-peers %d: want at least 1", f.torrentCap)
	}
	var err error
	if f.portMin, f.portMax, err = rtc.ParsePorts(f.ports); err != nil {
		return fmt.Errorf("--webrtc-ports: %w", err)
	}
	if f.bind != "" {
		if f.bindAddress, err = netip.ParseAddr(f.bind); err != nil {
			return fmt.Errorf("--webrtc-bind %q: not an IP address", f.bind)
		}
	}
	return nil
}

// transport is the WebRTC transport for t, or nil when WebRTC is off for it.
func (f *webrtcFlags) transport(t *metafile.Torrent, reg prometheus.Registerer) (*rtc.Transport, error) {
	ws := job.WebSocketTrackers(t.Trackers)
	if f.mode == "off" && job.OnlyWebSocketTrackers(t.Trackers) {
		return nil, fmt.Errorf("--webrtc off: %s lists only WebSocket trackers (%s), which reach peers over WebRTC alone; use --webrtc on or auto", t.Name, ws[0])
	}
	if f.mode == "off" || (f.mode == "auto" && len(ws) == 0) {
		return nil, nil
	}
	tr, err := rtc.NewTransport(rtc.Config{STUN: f.stun, PortMin: f.portMin, PortMax: f.portMax,
		Bind: f.bindAddress, MaxPeers: f.maxPeers, MaxOffers: f.maxOffers, Metrics: rtc.NewMetrics(reg)})
	if err != nil {
		return nil, fmt.Errorf("--stun or --webrtc-*: %w", err)
	}
	return tr, nil
}

// agentTransport is the agent's one WebRTC transport, shared by every torrent listing a
// ws:// or wss:// tracker (so --webrtc-max-peers and --webrtc-max-offers cap the whole
// agent, and the torrents share one WebSocket per tracker URL), or nil with
// --webrtc off. "on" and "auto" are the same to the agent: a torrent without WebSocket
// trackers has nowhere to meet a browser.
func (f *webrtcFlags) agentTransport(reg prometheus.Registerer) (*rtc.Transport, error) {
	if f.mode == "off" {
		return nil, nil
	}
	tr, err := rtc.NewTransport(rtc.Config{STUN: f.stun, PortMin: f.portMin, PortMax: f.portMax,
		Bind: f.bindAddress, MaxPeers: f.maxPeers, MaxOffers: f.maxOffers, Metrics: rtc.NewMetrics(reg)})
	if err != nil {
		return nil, fmt.Errorf("--stun or --webrtc-*: %w", err)
	}
	return tr, nil
}
