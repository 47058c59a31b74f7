package wsapi

import (
	"strconv"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// notAuthorized is bttrack's reason for a torrent outside --allowed_dir.
const notAuthorized = "Requested download is not authorized for use with this tracker."

// handle serves one text message.
func (c *conn) handle(data []byte) {
	var backing [10]offer // the offers of a usual announce, without an allocation
	req := request{Offers: backing[:0]}
	if err := req.decode(data); err != nil {
		c.refuse(rejBadJSON, "", nil, "malformed message: not a JSON object of the WebTorrent tracker protocol")
		return
	}
	switch req.Action {
	case "announce":
		if req.Answer != nil {
			c.s.m.msgAnswer.Inc()
			c.answer(&req)
			return
		}
		c.s.m.msgAnnounce.Inc()
		c.announce(&req)
	case "scrape":
		c.s.m.msgScrape.Inc()
		c.scrape(&req)
	default:
		c.refuse(rejBadAction, "", nil, "invalid action: want announce or scrape")
	}
}

// infoHash reads a message's info_hash as one binary string.
func infoHash(raw []byte) (bittorrent.InfoHash, error) {
	b, err := binary20(raw, "info_hash")
	return bittorrent.InfoHash(b), err
}

// isObject reports whether raw is a JSON object (an SDP offer or answer: {type, sdp}).
func isObject(raw []byte) bool { return len(raw) >= 2 && raw[0] == '{' }

func (c *conn) announce(req *request) {
	s := c.s
	cfg := &s.cfg
	ih, err := infoHash(req.InfoHash)
	if err != nil {
		c.refuse(rejBadField, "announce", nil, err.Error())
		return
	}
	id, err := binary20(req.PeerID, "peer_id")
	if err != nil {
		c.refuse(rejBadField, "announce", ih[:], err.Error())
		return
	}
	if cfg.Allowed != nil && !cfg.Allowed(ih) {
		c.refuse(rejNotAllowed, "announce", ih[:], notAuthorized)
		return
	}
	if len(req.Offers) > cfg.MaxOffers {
		c.refuse(rejOffers, "announce", ih[:], "too many offers: at most "+strconv.Itoa(cfg.MaxOffers))
		return
	}
	var idBacking [10][20]byte
	offerIDs := idBacking[:0]
	if n := len(req.Offers); n > 0 {
		if n <= len(idBacking) {
			offerIDs = idBacking[:n]
		} else {
			offerIDs = make([][20]byte, n)
		}
		for i := range req.Offers {
			o := &req.Offers[i]
			if offerIDs[i], err = binary20(o.OfferID, "offer_id"); err == nil && !isObject(o.Offer) {
				err = &fieldError{"offer"}
			}
			if err != nil {
				c.refuse(rejBadField, "announce", ih[:], err.Error())
				return
			}
		}
	}
	numWant := cfg.DefaultNumWant
	if req.HasNumWant {
		numWant = max(0, min(req.NumWant, cfg.MaxOffers))
	}
	numWant = min(numWant, len(req.Offers))
	seeder := req.HasLeft && req.Left == 0
	switch req.Event {
	case "", "started", "completed", "stopped", "update", "paused":
	default:
		c.refuse(rejBadField, "announce", ih[:], "invalid event")
		return
	}

	now := cfg.Now().Unix()
	sh := s.shardOf(&ih)
	sh.mu.Lock()
	t := sh.torrents[ih]
	m := c.members[ih]
	if m != nil && m.removed {
		delete(c.members, ih)
		m = nil
	}
	if req.Event == "stopped" {
		if m != nil {
			s.remove(sh, m)
			delete(c.members, ih)
		}
		sh.mu.Unlock()
		c.sendTo(c, c.reply(ih))
		return
	}
	if other := t.lookup(id); other != nil && other.c != c {
		sh.mu.Unlock()
		c.refuse(rejPeerIDTaken, "announce", ih[:], "peer_id is in use on another connection")
		return
	}
	if m == nil {
		if len(c.members) >= cfg.MaxSwarms {
			sh.mu.Unlock()
			c.refuse(rejSwarmsFull, "announce", ih[:], "too many torrents on one connection: at most "+strconv.Itoa(cfg.MaxSwarms))
			return
		}
		if t != nil && cfg.MaxPeers > 0 && len(t.peers) >= cfg.MaxPeers {
			sh.mu.Unlock()
			c.refuse(rejTorrentFull, "announce", ih[:], "torrent is full: too many peers")
			return
		}
		if t == nil {
			t = &torrent{byID: make(map[bittorrent.PeerID]*member)}
			sh.torrents[ih] = t
			s.torrents.Add(1)
		}
		m = &member{c: c, ih: ih, id: id, seeder: seeder}
		s.add(t, m)
		c.members[ih] = m
	} else if m.id != id {
		if s.cfg.Relay != nil {
			s.cfg.Relay.Leave(ih, m.id)
		}
		delete(t.byID, m.id)
		m.id = id
		t.byID[id] = m
	}
	s.setSeeder(t, m, seeder)
	completed := req.Event == "completed" && !m.counted
	m.counted = m.counted || completed
	m.seen = now
	var targets []*member
	if numWant > 0 {
		var backing [10]*member
		targets = pick(backing[:0], t, c, s.localShare(ih, t, numWant))
	}
	relayed, picked := 0, len(targets)
	for i, to := range targets {
		if int(c.pending.Load()) >= cfg.MaxPendingOffers {
			s.m.dropped.WithLabelValues(dropPending).Add(float64(len(targets) - i))
			break
		}
		k := offerKey{ih: ih, id: offerIDs[i]}
		if old := sh.offers[k]; old != nil {
			s.forget(old) // an offer_id used again replaces its offer
		}
		sh.offers[k] = &pendingOffer{from: c, to: to.c, fromID: id, toID: to.id, expires: now + int64(cfg.OfferTTL.Seconds())}
		c.pending.Add(1)
		targets[relayed] = to
		relayed++
	}
	targets = targets[:relayed]
	var remote []RelayOffer
	if s.cfg.Relay != nil && relayed == picked && relayed < numWant {
		// The offers not for peers here (localShare) go to peers on other instances.
		remote = s.relayOffers(sh, c, ih, id, offerIDs[relayed:numWant], req.Offers[relayed:numWant], now)
	}
	sh.mu.Unlock()
	if s.cfg.Relay != nil {
		s.cfg.Relay.Join(ih, id)
		if len(remote) > 0 {
			s.cfg.Relay.Offer(ih, id, remote)
		}
	}

	if completed {
		s.completed(ih)
	}
	c.sendTo(c, c.reply(ih))
	for i, to := range targets {
		c.sendTo(to.c, c.relayed(ih, id, offerIDs[i], `,"offer":`, req.Offers[i].Offer))
		s.m.offers.Inc()
	}
}

// relayed is an offer or answer (key is `,"offer":` or `,"answer":`) as relayed: from peer
// ID from, with its offer_id and SDP object as the client sent it.
func (c *conn) relayed(ih bittorrent.InfoHash, from bittorrent.PeerID, offerID [20]byte, key string, sdp []byte) []byte {
	c.buf = relayedMessage(c.buf[:0], ih, from, offerID, key, sdp)
	return c.buf
}

// relayedMessage appends to b an offer or answer as relayed (see conn.relayed).
func relayedMessage(b []byte, ih bittorrent.InfoHash, from bittorrent.PeerID, offerID [20]byte, key string, sdp []byte) []byte {
	b = append(b, `{"action":"announce","info_hash":`...)
	b = appendBinary(b, ih[:])
	b = append(b, `,"peer_id":`...)
	b = appendBinary(b, from[:])
	b = append(b, `,"offer_id":`...)
	b = appendBinary(b, offerID[:])
	b = append(b, key...)
	b = append(b, sdp...)
	return append(b, '}')
}

// lookup returns the member with peer ID id, if t exists and has one.
func (t *torrent) lookup(id bittorrent.PeerID) *member {
	if t == nil {
		return nil
	}
	return t.byID[id]
}

// reply is the answer to an announce, with the torrent's counts of every kind of peer.
func (c *conn) reply(ih bittorrent.InfoHash) []byte {
	cn := c.s.swarmCounts(ih)
	b := c.buf[:0]
	b = append(b, `{"action":"announce","interval":`...)
	b = strconv.AppendInt(b, int64(c.s.cfg.Interval.Seconds()), 10)
	b = append(b, `,"info_hash":`...)
	b = appendBinary(b, ih[:])
	b = append(b, ',')
	b = appendCounts(b, int(cn.Complete), int(cn.Incomplete))
	b = append(b, '}')
	c.buf = b
	return b
}

// answer relays an answer to the peer whose outstanding offer it answers, and drops it
// otherwise.
func (c *conn) answer(req *request) {
	s := c.s
	ih, err := infoHash(req.InfoHash)
	if err != nil {
		c.refuse(rejBadField, "announce", nil, err.Error())
		return
	}
	var id, to bittorrent.PeerID
	var offerID [20]byte
	if id, err = binary20(req.PeerID, "peer_id"); err == nil {
		if to, err = binary20(req.ToPeerID, "to_peer_id"); err == nil {
			if offerID, err = binary20(req.OfferID, "offer_id"); err == nil && !isObject(req.Answer) {
				err = &fieldError{"answer"}
			}
		}
	}
	if err != nil {
		c.refuse(rejBadField, "announce", ih[:], err.Error())
		return
	}
	o := s.takeOffer(ih, offerID, c, id, to)
	if o == nil {
		return
	}
	if o.from == nil { // the offer came from a peer on another instance
		s.cfg.Relay.Answer(o.instance, &RelayMessage{Answer: true, InfoHash: ih, From: id, To: to, OfferID: offerID, SDP: req.Answer})
		s.m.answers.Inc()
		return
	}
	c.sendTo(o.from, c.relayed(ih, id, offerID, `,"answer":`, req.Answer))
	s.m.answers.Inc()
}

// scrape answers {"action":"scrape","info_hash": one or [many]} with the counts of each.
// A scrape without info_hash (the full scrape) is refused: the HTTP /scrape serves it.
func (c *conn) scrape(req *request) {
	s := c.s
	var hashes [][]byte
	switch raw := req.InfoHash; {
	case len(raw) == 0 || string(raw) == "null":
		c.refuse(rejBadField, "scrape", nil, "info_hash is required")
		return
	case raw[0] == '"':
		hashes = [][]byte{raw}
	case raw[0] == '[':
		d := decoder{b: raw} // checked by req.decode
		d.enter()
		var err error
		for n := 0; err == nil; {
			var ok bool
			if ok, err = d.nextElem(&n); !ok {
				break
			}
			var v []byte
			if v, err = d.value(); err == nil && v[0] != '"' && string(v) != "null" {
				err = errJSON
			}
			hashes = append(hashes, v)
		}
		if err == nil {
			break
		}
		fallthrough
	default:
		c.refuse(rejBadField, "scrape", nil, "invalid info_hash: want a string or an array of strings")
		return
	}
	if len(hashes) == 0 || len(hashes) > s.cfg.MaxScrapeHashes {
		c.refuse(rejBadField, "scrape", nil, "scrape between 1 and "+strconv.Itoa(s.cfg.MaxScrapeHashes)+" info_hash values")
		return
	}
	b := append(c.buf[:0], `{"action":"scrape","files":{`...)
	first := true
	for _, h := range hashes {
		raw, err := binary20(h, "info_hash")
		if err != nil {
			c.refuse(rejBadField, "scrape", nil, err.Error())
			return
		}
		ih := bittorrent.InfoHash(raw)
		if s.cfg.Allowed != nil && !s.cfg.Allowed(ih) {
			continue
		}
		cn := s.swarmCounts(ih)
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendBinary(b, ih[:])
		b = append(b, ':', '{')
		b = appendCounts(b, int(cn.Complete), int(cn.Incomplete))
		b = append(b, `,"downloaded":`...)
		b = strconv.AppendUint(b, uint64(cn.Downloaded), 10)
		b = append(b, '}')
	}
	b = append(b, '}', '}')
	c.buf = b
	c.sendTo(c, b)
}
