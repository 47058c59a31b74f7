// Package wsapi is the tracker's WebTorrent frontend: the WebSocket tracker protocol that
// browsers speak (the webtorrent client 3.x, bittorrent-tracker's WebSocket server and
// aquatic_ws), served on the same /announce URL as HTTP announces.
//
// A browser cannot listen for connections, so the tracker introduces peers instead of
// listing them: an announce carries up to MaxOffers WebRTC offers, and the tracker relays
// each to a different random WebSocket peer of the swarm, with the sender's peer_id and the
// offer's offer_id; the receiving peer's answer is relayed back only to the peer whose
// outstanding offer it answers (anything else is dropped and counted). Messages are JSON text
// frames; info_hash, peer_id and offer_id are 20-character strings of code points 0–255 (one
// byte each). "scrape" takes one info_hash or an array and answers with "files".
//
// WebSocket peers have no address another client could dial, so they live here, not in
// swarm.Store: they are never handed to HTTP or UDP clients, HTTP peers are never offered to
// them, and they are never saved (a peer cannot outlive its socket: closing it removes the
// peer at once). The swarm is one all the same: every count a client or an admin sees
// includes both kinds of peers. WebSocket replies and scrapes add the Store's (HTTP and UDP)
// counts to their own; HTTP and UDP announces, scrapes, the stats page, /stats.json and
// metrics add the WebSocket ones through swarm.WithOverlay, which Server satisfies (Counts,
// RangeTorrents, Totals; the metrics' "webtorrent" family). Counts is read on every HTTP and
// UDP announce, so it takes none of the locks WebSocket messages hold: a read lock on one of
// 64 maps of per-torrent atomic counters, and nothing while no torrent has WebSocket peers.
// A WebSocket "completed" is counted once per peer in the Store (Store.CountCompletion), so
// that it joins the "downloaded" figures and is saved in the state file with the HTTP and
// UDP completions.
//
// Several tracker instances on one shared store each hold their own browsers' sockets.
// Config.Relay joins them: each of an announce's offers goes to a peer drawn at random from
// the whole swarm, on every instance (the Relay counts the swarm's peers; until it has, peers
// here come first): those drawn here are served here, and the others go to the Relay, which
// hands each to a random peer of the swarm held by another instance (never the announcer);
// such an offer is remembered as outstanding like
// a local one, and its answer, relayed back, is checked the same way. An offer relayed in
// from another instance is delivered to its target peer and remembered (at most
// MaxRelayPending, each for OfferTTL), so that only the target's answer goes back, to the
// sending instance only. The Relay is never waited on: package wsrelay implements it over
// Redis sharded pub/sub.
//
// Limits (Config): offers per announce, message size, offer age, pending offers per
// connection, swarms per connection, peers per torrent, connections per client (an IPv4
// address or an IPv6 /64) and in all, an idle timeout kept from cutting live peers by pings
// sent every PingInterval, and a close after MaxBadMessages malformed messages (each answered
// with a JSON "failure reason").
//
// Connections: gorilla/websocket answers the handshake; frames are then read by our own
// RFC 6455 reader (frame.go) from the bytes a read found, so that an idle connection holds
// no goroutine and no buffer. On Linux its socket waits in the epoll set of one of
// GOMAXPROCS event loops (poll_linux.go), which read what a reported socket has and serve
// its whole frames themselves; a partial frame, or a message in fragments, keeps its bytes
// only while partial. The frames a loop's pass sends to one peer (a reply, answers from
// several peers) are written together when the pass ends, one write a peer (a batch over
// 32 KiB goes at once). Writes never wait for a peer: what a socket does not take at once
// is queued (up to 4 × MaxMessage, over which the peer is closed as stuck) and written by a
// goroutine that lasts while the queue does. The pinger closes connections idle for
// IdleTimeout. Elsewhere, a goroutine per connection reads with the same frame reader.
package wsapi
