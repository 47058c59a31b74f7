package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/session"
)

// connFlags are the limits on the peer listener and on connections that seed, get and
// agent share: what one address may hold, and how long a silent or non-reading peer keeps
// a slot.
type connFlags struct {
	maxHandshakes      int
	maxHandshakesPerIP int
	maxConnsPerIP      int
	firstByteTimeout   time.Duration
	handshakeTimeout   time.Duration
	uploadStallTimeout time.Duration
}

func (f *connFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.maxHandshakes, "max-handshakes", session.DefaultMaxHandshakes, "incoming handshakes in progress at once; when full, the oldest is closed for a new one")
	fl.IntVar(&f.maxHandshakesPerIP, "max-handshakes-per-ip", session.DefaultMaxHandshakesPerIP, "incoming handshakes in progress from one IPv4 address or IPv6 /64")
	fl.IntVar(&f.maxConnsPerIP, "max-connections-per-ip", session.DefaultMaxConnsPerIP, "connections of one torrent with one IPv4 address or IPv6 /64")
	fl.DurationVar(&f.firstByteTimeout, "handshake-first-byte-timeout", session.DefaultFirstByteTimeout, "close an incoming connection silent for this long")
	fl.DurationVar(&f.handshakeTimeout, "handshake-timeout", session.DefaultAcceptHandshakeTimeout, "close an incoming connection whose handshake is not done after this long")
	fl.DurationVar(&f.uploadStallTimeout, "upload-stall-timeout", session.DefaultUploadStallTimeout, "choke a peer that has taken none of our data for this long (it does not read)")
}

// validate checks the flags and names the bad one.
func (f *connFlags) validate() error {
	switch {
	case f.maxHandshakes < 1:
		return fmt.Errorf("--max-handshakes %d: want at least 1", f.maxHandshakes)
	case f.maxHandshakesPerIP < 1:
		return fmt.Errorf("--max-handshakes-per-ip %d: want at least 1", f.maxHandshakesPerIP)
	case f.maxConnsPerIP < 1:
		return fmt.Errorf("--max-connections-per-ip %d: want at least 1", f.maxConnsPerIP)
	case f.firstByteTimeout < 100*time.Millisecond:
		return fmt.Errorf("--handshake-first-byte-timeout %s: want at least 100ms", f.firstByteTimeout)
	case f.handshakeTimeout < f.firstByteTimeout:
		return fmt.Errorf("--handshake-timeout %s: want at least --handshake-first-byte-timeout (%s)", f.handshakeTimeout, f.firstByteTimeout)
	case f.uploadStallTimeout < time.Second:
		return fmt.Errorf("--upload-stall-timeout %s: want at least 1s", f.uploadStallTimeout)
	}
	return nil
}

// serve is the listener's configuration with these limits.
func (f *connFlags) serve(maxConns int, m *session.Metrics) session.ServeConfig {
	return session.ServeConfig{
		MaxConns:           maxConns,
		MaxHandshakes:      f.maxHandshakes,
		MaxHandshakesPerIP: f.maxHandshakesPerIP,
		FirstByteTimeout:   f.firstByteTimeout,
		HandshakeTimeout:   f.handshakeTimeout,
		Metrics:            m,
	}
}
