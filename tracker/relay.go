package main

import (
	"fmt"
	"time"

	"github.com/webswarm/webswarm/tracker/wsapi"
	"github.com/webswarm/webswarm/tracker/wsrelay"
)

// newRelay relays WebSocket offers and answers to the other tracker instances on the same
// Redis store. The relay is closed after the WebSocket server (closers run in reverse).
func (s *server) newRelay(cfg *wsapi.Config) error {
	o := s.o
	r, err := wsrelay.New(s.rdb, wsrelay.Options{
		Prefix:     o.storePrefix,
		Queue:      o.wsRelayQueue,
		MaxMessage: o.wsMaxMessage,
		PeerTTL:    2*time.Duration(o.wsInterval)*time.Second + time.Minute, // wsapi's peer timeout
		Timeout:    time.Duration(o.storeTimeoutMS) * time.Millisecond,
		Registerer: s.reg,
		Logger:     s.log,
	})
	if err != nil {
		return fmt.Errorf("WebSocket relay: %w", err)
	}
	s.closers = append(s.closers, r.Close)
	cfg.Relay = r
	cfg.MaxRelayPending = o.wsRelayPending
	s.log.Info("WebSocket relay", "instance", r.Instance())
	return nil
}
