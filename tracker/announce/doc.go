// Package announce is the tracker's transport-free core: it takes a parsed announce or scrape
// (BEP 3, BEP 23 compact peers, BEP 7 IPv6, BEP 48 scrape), applies the tracker's policy —
// intervals, numwant limits, the allowed-torrents list, NAT checking of new peers — and asks
// a swarm.Store for peers. Frontends (httpapi, udpapi) parse requests into a Request and
// encode a Response; this package never sees HTTP or UDP.
//
// The NAT check (bttrack's --nat_check) hides a new peer until its port accepts a connection
// from the tracker. By default the check is a bare TCP connect: a BitTorrent handshake names
// the torrent, and a client allowing one connection per IP (libtorrent's default) then takes
// the tracker's connection for a second one from a seeder on the tracker's host and drops
// one. Checks are bounded per source (an IPv4 address or IPv6 /64) and in total; a peer the
// checker cannot take is handed out unchecked rather than hidden.
//
// RateLimiter bounds announces per source, an IPv4 address or IPv6 prefix (/64 by default),
// in a bounded table that never forgets a source that is being limited to make room.
//
// A client's mistake is a *ClientError: frontends send its Reason as a bencoded
// "failure reason" (HTTP) or a BEP 15 error packet, and count it under its Code.
//
// Peer IDs are handed out only when Config.PeerIDs is set, and then only in dictionary
// (compact=0) replies to clients that do not send no_peer_id=1: modern clients ask for
// compact lists, and a peer ID is what an attacker needs to act on a peer (see the swarm
// package on peer identity).
package announce
