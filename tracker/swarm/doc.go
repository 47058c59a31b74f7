// Package swarm stores the peers of every torrent a tracker knows: who is in each swarm,
// seeders and leechers, completions, expiry, and random peer lists in the compact forms of
// BEP 23 (IPv4, 6 bytes a peer) and BEP 7 (IPv6, 18 bytes a peer).
//
// Store is the interface a tracker core talks to; Memory is the in-memory implementation and
// the hot path. It is sharded by info-hash (no lock spans two torrents in different shards),
// keeps each peer in 32 bytes (IPv4) or 44 bytes (IPv6) of a dense slab plus a 4-byte slot
// in an open-addressing index, and allocates nothing per announce: peer lists are appended to
// buffers the caller owns. StoreSuite (conformance.go) is the behaviour every Store must show.
package swarm
