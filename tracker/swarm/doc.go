// Package swarm stores the peers of every torrent a tracker knows: who is in each swarm,
// seeders and leechers, completions, expiry, and random peer lists in the compact forms of
// BEP 23 (IPv4, 6 bytes a peer) and BEP 7 (IPv6, 18 bytes a peer).
//
// Store is the interface a tracker core talks to; Memory is the in-memory implementation and
// the hot path. It is sharded by info-hash (no lock spans two torrents in different shards),
// keeps each peer in 32 bytes (IPv4) or 44 bytes (IPv6) of a dense slab plus a 4-byte slot
// in an open-addressing index, and allocates nothing per announce: peer lists are appended to
// buffers the caller owns. StoreSuite (conformance.go) is the behaviour every Store must show.
//
// Peer identity: a peer ID is public (other clients see it in handshakes), so it is not enough
// to act on a peer. An announce for a known peer ID from another address moves, stops or
// completes it only with the key (BEP 3 "key") the peer registered, compared through a hash
// keyed with a per-process random secret (29 bits); a peer registered without a key cannot
// leave its IP address at all (bttrack's "ip changed"). Key hashes are never saved: Restore
// brings peers back keyless, and each learns its key again from its own address.
//
// WithOverlay adds the counts of peers kept outside a Store (the WebSocket tracker's
// browsers) to everything the Store reports, while its peer lists and what it saves stay
// its own; Memory.CountCompletion counts such a peer's completion where it is saved.
//
// Limits (Config): torrents, peers per torrent and family, peers in all, and peers per IPv4
// address or IPv6 /64 over all torrents. A peer the limits refuse creates no torrent; stops,
// expiry and moves give its per-IP slot back.
package swarm
