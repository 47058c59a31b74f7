package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
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
