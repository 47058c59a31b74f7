package httpapi

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/benc"
	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Replies are bencoded with internal/benc's append-style writer into the request's pooled
// buffer (st.buf): an announce costs no allocation beyond it. The net/http path (handler.go)
// and the fast path (fastpath.go) send the same bytes. query.go parses the requests.

// failure encodes ce's failure reason into st.buf.
func failure(st *state, ce *announce.ClientError) []byte {
	if ce.RetryIn > 0 {
		st.buf = benc.FailureRetry(st.buf[:0], ce.Reason, ce.RetryIn)
		return st.buf
	}
	st.buf = benc.Failure(st.buf[:0], ce.Reason)
	return st.buf
}

// announceReply answers an announce with raw query q from client. The reply is in st.buf:
// valid until st goes back to the pool.
func (h *Handler) announceReply(st *state, q string, client netip.Addr) []byte {
	m := h.cfg.Tracker.Metrics()
	if len(q) > h.cfg.MaxQuery {
		m.Failure(announce.CodeTooLong)
		return failure(st, announce.Errorf(announce.CodeTooLong, "request too long"))
	}
	if h.cfg.RateLimit != nil && !h.cfg.RateLimit.Allow(client) {
		m.Failure(announce.CodeRateLimited)
		return failure(st, announce.Errorf(announce.CodeRateLimited, "too many announces from your address; slow down"))
	}
	req := &st.req
	if err := parseAnnounce(q, req, &st.p); err != nil {
		ce := announce.AsClientError(err)
		m.Failure(ce.Code)
		return failure(st, ce)
	}
	req.Addr = client
	if st.p.ipGiven && h.overrideIP(client) {
		req.Addr = st.p.ip
	}
	if err := h.cfg.Tracker.Announce(req, &st.resp); err != nil {
		if ce := announce.AsClientError(err); ce != nil {
			return failure(st, ce)
		}
		h.cfg.Logger.Error("announce failed", "err", err)
		return failure(st, announce.Errorf("internal", "internal tracker error"))
	}
	st.buf = h.appendAnnounceReply(st.buf[:0], req, &st.resp, client)
	return st.buf
}

// appendAnnounceReply encodes an announce reply (BEP 3, BEP 23 compact peers, BEP 7 peers6).
func (h *Handler) appendAnnounceReply(b []byte, req *announce.Request, resp *announce.Response, client netip.Addr) []byte {
	b = append(b, 'd')
	b = benc.KeyInt(b, "complete", int64(resp.Complete))
	b = benc.KeyInt(b, "downloaded", int64(resp.Downloaded))
	if client.IsValid() {
		b = benc.String(b, "external ip")
		if client.Is4() {
			a := client.As4()
			b = benc.Bytes(b, a[:])
		} else {
			a := client.As16()
			b = benc.Bytes(b, a[:])
		}
	}
	b = benc.KeyInt(b, "incomplete", int64(resp.Incomplete))
	b = benc.KeyInt(b, "interval", int64(resp.Interval/time.Second))
	b = benc.KeyInt(b, "min interval", int64(resp.MinInterval/time.Second))
	if resp.Peers.Format == swarm.Compact {
		b = benc.KeyBytes(b, "peers", resp.Peers.V4)
		if len(resp.Peers.V6) > 0 {
			b = benc.KeyBytes(b, "peers6", resp.Peers.V6)
		}
	} else {
		b = benc.String(b, "peers")
		b = append(b, 'l')
		b = appendDictPeers(b, resp.Peers.V4, 4, req.NoPeerID)
		b = appendDictPeers(b, resp.Peers.V6, 16, req.NoPeerID)
		b = append(b, 'e')
	}
	b = benc.KeyBytes(b, "tracker id", []byte(h.cfg.TrackerID))
	if resp.Warning != "" {
		b = benc.KeyBytes(b, "warning message", []byte(resp.Warning))
	}
	return append(b, 'e')
}

// appendDictPeers encodes WithID records (address, port, peer ID) as BEP 3 peer dictionaries.
func appendDictPeers(b, recs []byte, iplen int, noPeerID bool) []byte {
	rl := iplen + 2 + 20
	for ; len(recs) >= rl; recs = recs[rl:] {
		var ip netip.Addr
		if iplen == 4 {
			ip = netip.AddrFrom4([4]byte(recs[:4]))
		} else {
			ip = netip.AddrFrom16([16]byte(recs[:16]))
		}
		port := int64(recs[iplen])<<8 | int64(recs[iplen+1])
		var txt [46]byte
		b = append(b, 'd')
		b = benc.KeyBytes(b, "ip", ip.AppendTo(txt[:0]))
		if !noPeerID {
			b = benc.KeyBytes(b, "peer id", recs[iplen+2:rl])
		}
		b = benc.KeyInt(b, "port", port)
		b = append(b, 'e')
	}
	return b
}

// scrapeReply answers a scrape with raw query q. The reply is in st.buf, valid until st goes
// back to the pool, or is the cached full scrape, which is shared: never modify it.
func (h *Handler) scrapeReply(st *state, q string) []byte {
	m := h.cfg.Tracker.Metrics()
	if h.cfg.Scrape == ScrapeOff {
		m.Failure(announce.CodeScrapeOff)
		m.Scrape("specific", false)
		return failure(st, announce.Errorf(announce.CodeScrapeOff, "scrape is disabled on this tracker"))
	}
	if len(q) > h.cfg.MaxQuery {
		m.Failure(announce.CodeTooLong)
		m.Scrape("specific", false)
		return failure(st, announce.Errorf(announce.CodeTooLong, "request too long"))
	}
	hashes, err := parseScrape(q, st.hashes, h.cfg.MaxScrapeHashes)
	st.hashes = hashes
	if err != nil {
		ce := announce.AsClientError(err)
		m.Failure(ce.Code)
		m.Scrape("specific", false)
		return failure(st, ce)
	}
	if len(hashes) == 0 {
		if h.cfg.Scrape != ScrapeFull {
			m.Failure(announce.CodeScrapeOff)
			m.Scrape("full", false)
			return failure(st, announce.Errorf(announce.CodeScrapeOff, "full scrape is disabled; name info_hash parameters"))
		}
		body, ce := h.full.get(h)
		if ce != nil {
			m.Failure(ce.Code)
			m.Scrape("full", false)
			return failure(st, ce)
		}
		m.Scrape("full", true)
		return body
	}
	b := append(st.buf[:0], "d5:filesd"...)
	// Keys of a bencoded dictionary must be sorted and unique.
	sortHashes(hashes)
	var prev *bittorrent.InfoHash
	for i := range hashes {
		ih := &hashes[i]
		if prev != nil && *prev == *ih {
			continue
		}
		prev = ih
		c, _ := h.cfg.Tracker.Scrape(*ih)
		b = h.appendFile(b, *ih, c)
	}
	b = append(b, "ee"...)
	st.buf = b
	m.Scrape("specific", true)
	return b
}

// appendFile encodes one torrent's entry of a scrape reply's files dictionary.
func (h *Handler) appendFile(b []byte, ih bittorrent.InfoHash, c swarm.Counts) []byte {
	b = benc.Bytes(b, ih[:])
	b = append(b, 'd')
	b = benc.KeyInt(b, "complete", int64(c.Complete))
	b = benc.KeyInt(b, "downloaded", int64(c.Downloaded))
	b = benc.KeyInt(b, "incomplete", int64(c.Incomplete))
	if h.cfg.Name != nil {
		if name, ok := h.cfg.Name(ih); ok {
			b = benc.KeyBytes(b, "name", []byte(name))
		}
	}
	return append(b, 'e')
}

// sortHashes sorts info-hashes as bencoded dictionary keys must be.
func sortHashes(hs []bittorrent.InfoHash) {
	slices.SortFunc(hs, func(a, b bittorrent.InfoHash) int { return bytes.Compare(a[:], b[:]) })
}

// fullScrape caches the full scrape's body (or its refusal) for one second: it walks every
// torrent. One request builds it; requests arriving meanwhile never wait for the build (they
// may be on an accepting goroutine, which new announces wait for): they get the previous
// body, or are told to retry.
type fullScrape struct {
	mu       sync.Mutex
	at       time.Time
	body     []byte
	tooBig   *announce.ClientError // the last build's refusal, instead of body
	building bool
}

var errFullScrapeBusy = announce.Errorf(announce.CodeScrapeBusy, "full scrape is being prepared; try again in a second")

func (f *fullScrape) get(h *Handler) ([]byte, *announce.ClientError) {
	f.mu.Lock()
	fresh := (f.body != nil || f.tooBig != nil) && time.Since(f.at) < time.Second
	if fresh || f.building {
		body, tooBig := f.body, f.tooBig
		f.mu.Unlock()
		switch {
		case body != nil:
			return body, nil
		case tooBig != nil:
			return nil, tooBig
		}
		return nil, errFullScrapeBusy
	}
	f.building = true
	f.mu.Unlock()
	body, tooBig := h.buildFullScrape()
	f.mu.Lock()
	f.body, f.tooBig, f.at, f.building = body, tooBig, time.Now(), false
	f.mu.Unlock()
	return body, tooBig
}

// buildFullScrape encodes the full scrape, or refuses it when the tracker holds more than
// MaxFullScrape torrents (having walked no more than that many).
func (h *Handler) buildFullScrape() ([]byte, *announce.ClientError) {
	type entry struct {
		ih bittorrent.InfoHash
		c  swarm.Counts
	}
	var all []entry
	limit := h.cfg.MaxFullScrape
	h.cfg.Tracker.Store().RangeTorrents(func(ih bittorrent.InfoHash, c swarm.Counts) bool {
		all = append(all, entry{ih, c})
		return limit < 0 || len(all) <= limit
	})
	if limit >= 0 && len(all) > limit {
		return nil, announce.Errorf(announce.CodeScrapeTooBig,
			"full scrape is off on this tracker (more than %d torrents); scrape with info_hash parameters", limit)
	}
	// Bencoded dictionary keys must be sorted.
	slices.SortFunc(all, func(a, b entry) int { return bytes.Compare(a.ih[:], b.ih[:]) })
	b := append(make([]byte, 0, 64+len(all)*80), "d5:filesd"...)
	allowed := h.cfg.Tracker.Config().Allowed
	for _, e := range all {
		if allowed != nil && !allowed.Allowed(e.ih) {
			continue
		}
		b = h.appendFile(b, e.ih, e.c)
	}
	b = append(b, "ee"...)
	return b, nil
}
