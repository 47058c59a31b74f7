package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/session"
)

// --payload-check-interval: a negative interval stops start-up naming the flag (seed, get
// and agent); 0 means file notifications only, which the session spells negative.
func TestPayloadCheckIntervalFlag(t *testing.T) {
	dir := t.TempDir()
	_, err := runAgentCmd(context.Background(), "--dir", dir, "--state", dir, "--payload-check-interval", "-1s")
	if err == nil || !strings.Contains(err.Error(), "--payload-check-interval") {
		t.Errorf("agent with a negative interval: %v", err)
	}
	// The flags as the seed command registers them, so every other flag has its default.
	var f peerFlags
	f.register(&cobra.Command{}, "fast")
	f.payloadCheck = -time.Second
	if err := f.validate(); err == nil || !strings.Contains(err.Error(), "--payload-check-interval") {
		t.Errorf("seed with a negative interval: %v", err)
	}
	f.payloadCheck = 0
	if err := f.validate(); err != nil {
		t.Errorf("seed with --payload-check-interval 0: %v", err)
	}
	for in, want := range map[time.Duration]time.Duration{0: -1, time.Second: time.Second} {
		if got := payloadCheckInterval(in); got != want {
			t.Errorf("payloadCheckInterval(%v) = %v, want %v", in, got, want)
		}
	}
	if session.DefaultPayloadCheckInterval <= 0 {
		t.Error("no default poll")
	}
}
