package wsapi

import (
	"math/rand/v2"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Relay carries offers and answers between tracker instances that share a store, so that a
// browser connected to one instance meets browsers connected to the others (see the package
// documentation). Its methods are called with a shard lock held or on a peer's message path:
// none may block (a full queue or an unreachable Redis drops, and counts, instead).
type Relay interface {
	// Start begins delivering messages from other instances to deliver, until the Relay
	// is closed by its owner.
	Start(deliver func(*RelayMessage))
	// Join records that peer id of swarm ih is connected to this instance (again: an
	// announce refreshes it); Leave that it is gone.
	Join(ih bittorrent.InfoHash, id bittorrent.PeerID)
	Leave(ih bittorrent.InfoHash, id bittorrent.PeerID)
	// Offer sends each offer to a different random peer of swarm ih connected to another
	// instance (never peer from), as many as there are such peers. It keeps nothing of
	// offers' SDP after it returns.
	Offer(ih bittorrent.InfoHash, from bittorrent.PeerID, offers []RelayOffer)
	// Peers returns how many peers swarm ih has on all instances, this one included, as
	// last counted; ok is false when it does not know.
	Peers(ih bittorrent.InfoHash) (n int, ok bool)
	// Answer sends m (an answer) to instance, the one that relayed its offer.
	Answer(instance string, m *RelayMessage)
}

// RelayOffer is one offer of an announce, relayed to another instance.
type RelayOffer struct {
	OfferID [20]byte
	SDP     []byte
}

// RelayMessage is an offer or answer relayed from another instance to a peer connected here.
type RelayMessage struct {
	Answer   bool // an answer; otherwise an offer
	InfoHash bittorrent.InfoHash
	From, To bittorrent.PeerID // the sending and receiving peers
	OfferID  [20]byte
	Instance string // the sending instance, where an offer's answer goes
	SDP      []byte // the offer or answer object, as the sending peer wrote it
}

// localShare returns how many of an announce's numWant offers in torrent t (the announcer
// in it, the shard locked) go to peers connected here; the others go to the Relay. Each
// offer goes to a peer drawn at random from the whole swarm, on every instance, so that a
// swarm whose peers are spread over instances stays one swarm. Without a Relay, or before
// it has counted the swarm, local peers come first.
func (s *Server) localShare(ih bittorrent.InfoHash, t *torrent, numWant int) int {
	if s.cfg.Relay == nil {
		return numWant
	}
	total, ok := s.cfg.Relay.Peers(ih)
	here := len(t.peers)
	if !ok || total <= here {
		return numWant
	}
	local, remote := here-1, total-here
	n := 0
	for range min(numWant, local+remote) { // draws without replacement
		if rand.IntN(local+remote) < local {
			n++
			local--
		} else {
			remote--
		}
	}
	return n
}

// relayOffers hands the offers of an announce that found no local peer to take them to
// the relay, and remembers each as outstanding (the shard locked), so that the answer that
// comes back from another instance is accepted. It returns how many were handed over.
func (s *Server) relayOffers(sh *shard, c *conn, ih bittorrent.InfoHash, from bittorrent.PeerID, offerIDs [][20]byte, offers []offer, now int64) []RelayOffer {
	var out []RelayOffer
	for i := range offerIDs {
		if int(c.pending.Load()) >= s.cfg.MaxPendingOffers {
			s.m.dropped.WithLabelValues(dropPending).Add(float64(len(offerIDs) - i))
			break
		}
		k := offerKey{ih: ih, id: offerIDs[i]}
		if old := sh.offers[k]; old != nil {
			s.forget(old)
		}
		sh.offers[k] = &pendingOffer{from: c, fromID: from, expires: now + int64(s.cfg.OfferTTL.Seconds())}
		c.pending.Add(1)
		out = append(out, RelayOffer{OfferID: offerIDs[i], SDP: offers[i].Offer})
	}
	return out
}

// takeOffer removes and returns the outstanding offer offerID of torrent ih that an
// answer from peer toID on connection to, for peer fromID, answers; to nil means an answer
// relayed from another instance, for an offer that went out through the Relay. Without
// one (or expired), it counts the answer dropped and returns nil.
func (s *Server) takeOffer(ih bittorrent.InfoHash, offerID [20]byte, to *conn, toID, fromID bittorrent.PeerID) *pendingOffer {
	now := s.cfg.Now().Unix()
	sh := s.shardOf(&ih)
	k := offerKey{ih: ih, id: offerID}
	sh.mu.Lock()
	o := sh.offers[k]
	if o == nil || o.to != to || o.fromID != fromID || o.expires <= now ||
		(to != nil && o.toID != toID) || (to == nil && o.from == nil) {
		sh.mu.Unlock()
		s.m.dropped.WithLabelValues(dropUnknown).Inc()
		return nil
	}
	delete(sh.offers, k)
	s.forget(o)
	sh.mu.Unlock()
	return o
}

// forget releases what an outstanding offer holds (the shard locked; o no longer in it).
func (s *Server) forget(o *pendingOffer) {
	if o.from != nil {
		o.from.pending.Add(-1)
	} else {
		s.relayPending.Add(-1)
	}
}

// deliver takes a message another instance relayed: an offer goes to its target peer, if
// connected here, and is remembered so that its answer goes back to the sending instance;
// an answer goes to the peer whose outstanding offer it answers. Anything else is dropped.
func (s *Server) deliver(rm *RelayMessage) {
	if rm.Answer {
		o := s.takeOffer(rm.InfoHash, rm.OfferID, nil, bittorrent.PeerID{}, rm.To)
		if o == nil {
			return
		}
		o.from.send(relayedMessage(nil, rm.InfoHash, rm.From, rm.OfferID, `,"answer":`, rm.SDP))
		s.m.answers.Inc()
		return
	}
	now := s.cfg.Now().Unix()
	sh := s.shardOf(&rm.InfoHash)
	k := offerKey{ih: rm.InfoHash, id: rm.OfferID}
	sh.mu.Lock()
	to := sh.torrents[rm.InfoHash].lookup(rm.To)
	switch {
	case to == nil:
		sh.mu.Unlock()
		s.m.dropped.WithLabelValues(dropRelayNoPeer).Inc()
		return
	case s.relayPending.Load() >= int64(s.cfg.MaxRelayPending):
		sh.mu.Unlock()
		s.m.dropped.WithLabelValues(dropRelayFull).Inc()
		return
	}
	if old := sh.offers[k]; old != nil {
		s.forget(old)
	}
	sh.offers[k] = &pendingOffer{to: to.c, instance: rm.Instance, fromID: rm.From, toID: rm.To, expires: now + int64(s.cfg.OfferTTL.Seconds())}
	s.relayPending.Add(1)
	sh.mu.Unlock()
	to.c.send(relayedMessage(nil, rm.InfoHash, rm.From, rm.OfferID, `,"offer":`, rm.SDP))
	s.m.offers.Inc()
}
