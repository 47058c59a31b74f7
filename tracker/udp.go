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

// listenUDP creates the BEP 15 frontend and its socket on --udp_bind:--udp_port (nil without
// UDP: --udp_port 0).
func (s *server) listenUDP() (net.PacketConn, error) {
	o := s.o
	if o.udpPort == 0 {
		return nil, nil
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
		return nil, err
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(o.udpBind, strconv.Itoa(o.udpPort)))
	if err != nil {
		return nil, fmt.Errorf("listen UDP: %w", inUse(err, "--udp_port (or --udp_bind; --udp_port 0 turns UDP off)"))
	}
	s.udp = srv
	return conn, nil
}

// serveUDP serves conn until stopUDP.
func (s *server) serveUDP(wg *sync.WaitGroup, errc chan<- error, conn net.PacketConn) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.udp.Serve(conn); err != nil && !errors.Is(err, udpapi.ErrServerClosed) {
			errc <- fmt.Errorf("UDP: %w", err)
		}
	}()
	s.log.Info("UDP listening", "addr", conn.LocalAddr().String())
}

func (s *server) stopUDP() {
	if s.udp != nil {
		s.udp.Close()
	}
}
