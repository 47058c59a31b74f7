package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// TestWebRTCFlags: a bad WebRTC flag is refused with its name.
func TestWebRTCFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		bad  string // "" when valid
	}{
		{nil, ""},
		{[]string{"--webrtc", "on", "--webrtc-ports", "50000-50100", "--webrtc-bind", "127.0.0.1", "--stun", "stun:a:3478", "--stun", "stun:b:3478"}, ""},
		{[]string{"--webrtc", "maybe"}, "--webrtc"},
		{[]string{"--webrtc-ports", "9-1"}, "--webrtc-ports"},
		{[]string{"--webrtc-bind", "localhost"}, "--webrtc-bind"},
		{[]string{"--webrtc-max-peers", "0"}, "--webrtc-max-peers"},
		{[]string{"--webrtc-torrent-peers", "0"}, "--webrtc-torrent-peers"},
		{[]string{"--webrtc-max-offers", "0"}, "--webrtc-max-offers"},
	} {
		var f webrtcFlags
		fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.register(fl)
		if err := fl.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := f.validate()
		if tc.bad == "" && err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		if tc.bad != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.bad+" ") && !strings.HasPrefix(err.Error(), tc.bad+":")) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.bad)
		}
	}
}

// TestWebRTCOffWithOnlyWebSocketTrackers: --webrtc off on a torrent whose trackers are all
// WebSocket ones would leave it with no way to any peer; it is refused naming the flag, and a
// torrent that also lists an HTTP tracker is fine.
func TestWebRTCOffWithOnlyWebSocketTrackers(t *testing.T) {
	f := webrtcFlags{mode: "off"}
	wsOnly := &metafile.Torrent{Name: "big.iso", Trackers: [][]string{{"ws://t.example/announce"}}}
	_, err := f.transport(wsOnly, prometheus.NewRegistry())
	if err == nil || !strings.HasPrefix(err.Error(), "--webrtc off:") || !strings.Contains(err.Error(), "big.iso") {
		t.Errorf("ws-only torrent with --webrtc off: %v, want an error naming --webrtc off and the torrent", err)
	}
	both := &metafile.Torrent{Name: "big.iso", Trackers: [][]string{{"http://t.example/announce"}, {"ws://t.example/announce"}}}
	if tr, err := f.transport(both, prometheus.NewRegistry()); err != nil || tr != nil {
		t.Errorf("torrent with an HTTP tracker and --webrtc off: transport %v, %v; want none and no error", tr, err)
	}
}
