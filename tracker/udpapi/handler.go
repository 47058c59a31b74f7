package udpapi

import (
	"net/netip"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// worker is one reading goroutine's state: its buffers are reused for every packet, which
// is what keeps an announce free of allocations.
type worker struct {
	s    *Server
	in   []byte // received packet
	out  []byte // reply being built
	req  announce.Request
	resp announce.Response
	key  [4]byte // req.Key points here
}

func (s *Server) newWorker() *worker {
	maxWant := s.tracker.Config().MaxNumWant
	return &worker{
		s:  s,
		in: make([]byte, s.readLen),
		// The largest replies: an announce with every peer IPv6, or the longest scrape.
		out: make([]byte, 0, max(announceReplyLen+18*maxWant, 8+scrapeEntryLen*s.cfg.MaxScrapeHashes, 512)),
		// The store fills the announcer's own family first and the other with what is left,
		// so either list may hold up to maxWant peers.
		resp: announce.Response{Peers: swarm.PeerList{
			V4: make([]byte, 0, 6*maxWant),
			V6: make([]byte, 0, 18*maxWant),
		}},
	}
}

// handle answers packet p from src at time now. It returns the reply (empty: send nothing;
// the slice is the worker's and good until the next call) and the action label the packet
// was counted under.
func (w *worker) handle(p []byte, src netip.AddrPort, now time.Time) (reply []byte, action int) {
	s := w.s
	h, ok := parseHeader(p)
	if !ok {
		s.m.packets[labelUnknown][outcomeDropped].Inc()
		return nil, labelUnknown
	}
	out := w.out[:0]
	switch h.action {
	case actionConnect:
		if h.connID != protocolID {
			return w.fail(h, labelConnect, errBadProtocolID, len(p)), labelConnect
		}
		out = appendConnect(out, h.txID, s.ids.make(src, now))
		s.m.packets[labelConnect][outcomeOK].Inc()
		return w.keep(out), labelConnect
	case actionAnnounce, actionScrape:
		action = labelAnnounce
		if h.action == actionScrape {
			action = labelScrape
		}
		if !s.ids.valid(h.connID, src, now) {
			// Not counted as a failure of the core: after a tracker restart every client's
			// ID is stale, and the client's remedy is routine (connect again).
			s.m.packets[action][outcomeBadConnID].Inc()
			return w.keep(appendError(out, h.txID, unverified(errConnID.Reason, len(p)))), action
		}
		if action == labelAnnounce {
			return w.announce(p, h, src), action
		}
		return w.scrape(p, h), action
	}
	return w.fail(h, labelUnknown, errUnknownAction, len(p)), labelUnknown
}

// keep stores a grown reply buffer for the next packet.
func (w *worker) keep(out []byte) []byte {
	w.out = out
	return out
}

// fail answers a request the frontend refused before the core saw it: an error packet with
// the reason, counted in the core's failures and in this frontend's packets. limit, when
// positive, is the request's length and the sender is unverified (see unverified).
func (w *worker) fail(h header, action int, ce *announce.ClientError, limit int) []byte {
	w.s.tracker.Metrics().Failure(ce.Code)
	w.s.m.packets[action][outcomeFailed].Inc()
	reason := ce.Reason
	if limit > 0 {
		reason = unverified(reason, limit)
	}
	return w.keep(appendError(w.out[:0], h.txID, reason))
}

// unverified cuts the reason of an error packet to a sender whose address no connection ID
// vouches for, so that the reply is no longer than the request: a spoofed packet must not
// make the tracker an amplifier towards its victim (BEP 15's reason for connection IDs).
func unverified(reason string, reqLen int) string {
	return reason[:min(len(reason), max(reqLen-8, 0))]
}

func (w *worker) announce(p []byte, h header, src netip.AddrPort) []byte {
	s := w.s
	addr := src.Addr().Unmap()
	if s.cfg.RateLimit != nil && !s.cfg.RateLimit.Allow(addr) {
		return w.fail(h, labelAnnounce, errRateLimited, 0)
	}
	if ce := parseAnnounce(p, addr, &w.req, &w.key, s.cfg.AllowIPOverride); ce != nil {
		return w.fail(h, labelAnnounce, ce, 0)
	}
	// The core counts its own refusals; the frontend counts only the packet.
	if err := s.tracker.Announce(&w.req, &w.resp); err != nil {
		if ce := announce.AsClientError(err); ce != nil {
			s.m.packets[labelAnnounce][outcomeFailed].Inc()
			return w.keep(appendError(w.out[:0], h.txID, ce.Reason))
		}
		s.cfg.Logger.Error("udp tracker: announce failed", "err", err)
		s.m.packets[labelAnnounce][outcomeError].Inc()
		return w.keep(appendError(w.out[:0], h.txID, internalReason))
	}
	s.m.packets[labelAnnounce][outcomeOK].Inc()
	return w.keep(appendAnnounce(w.out[:0], h.txID, &w.resp, !addr.Is4()))
}

func (w *worker) scrape(p []byte, h header) []byte {
	s := w.s
	fail := func(ce *announce.ClientError) []byte {
		s.tracker.Metrics().Scrape("specific", false)
		return w.fail(h, labelScrape, ce, 0)
	}
	if s.cfg.DisableScrape {
		return fail(errScrapeOff)
	}
	hs, ce := scrapeHashes(p, s.cfg.MaxScrapeHashes)
	if ce != nil {
		return fail(ce)
	}
	out := appendHeader(w.out[:0], actionScrape, h.txID)
	var ih bittorrent.InfoHash
	for ; len(hs) > 0; hs = hs[infoHashLen:] {
		copy(ih[:], hs)
		c, _ := s.tracker.Scrape(ih) // an unknown torrent is all zeros
		out = appendScrapeEntry(out, c)
	}
	s.tracker.Metrics().Scrape("specific", true)
	s.m.packets[labelScrape][outcomeOK].Inc()
	return w.keep(out)
}
