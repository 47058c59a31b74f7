package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/udpapi"
)

// startUDP starts the BEP 15 frontend on --bind:--udp_port (unless --udp_port 0).
func (s *server) startUDP(wg *sync.WaitGroup, errc chan<- error) error {
	o := s.o
	if o.udpPort == 0 {
		return nil
	}
	natCheck := o.natCheck > 0
	srv, err := udpapi.New(udpapi.Config{
		DisableScrape: o.scrape == "off",
		AllowIPOverride: func(src, _ netip.Addr) bool {
			return announce.AllowIPOverride(o.onlyLocalOverrideIP, natCheck, src)
		},
		RateLimit: s.limit,
		Latency:   s.latency,
		Logger:    s.log,
	}, s.tracker, s.reg)
	if err != nil {
		return err
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(o.bind, strconv.Itoa(o.udpPort)))
	if err != nil {
		return fmt.Errorf("listen UDP: %w", err)
	}
	s.udp = srv
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(conn); err != nil && !errors.Is(err, udpapi.ErrServerClosed) {
			errc <- fmt.Errorf("UDP: %w", err)
		}
	}()
	s.log.Info("UDP listening", "addr", conn.LocalAddr().String())
	return nil
}

func (s *server) stopUDP() {
	if s.udp != nil {
		s.udp.Close()
	}
}
