// Package redisstore keeps a tracker's swarms in Redis (or Valkey), so that any number of
// tracker instances share one set of swarms.
//
// Layout: every key of one swarm carries the swarm's hash tag, {<info_hash hex>}, so a swarm
// sits in one Redis Cluster slot. A swarm is a meta hash (seeders, leechers, completions,
// peers per family), a hash of peer records (family and peer ID -> flags, keyed hash of the
// client's key, compact address), a sorted set of last-seen times, and four sets of the
// peers others may be handed (seeders and leechers, IPv4 and IPv6), whose members are the
// compact address followed by the peer ID. One announce is one round trip: a Lua script
// (EVALSHA) registers, refreshes, moves or removes the peer, counts a completion once,
// prunes up to 16 expired peers of that swarm, and returns the counts and up to numwant
// random peers (SRANDMEMBER) already in compact form.
//
// Expiry: peers expire by their last-seen time inside the swarm, pruned on access with
// bounded work and by a background sweep that walks a torrent index split in 16 sets
// (SSCAN, never KEYS).
//
// On a single Redis, the totals, the per-IP counts and the dead-torrent set are global keys
// that the script updates in the same call, so counts and the store-wide limits stay exact
// with any number of instances. On a Redis Cluster (redis-cluster:// seed nodes; the client
// follows MOVED/ASK) the script gets only the swarm's keys, which share one slot: the index
// is updated by a second call only when a torrent is born or dropped, Totals sums the swarms'
// own counts (exact with any number of instances, its cost growing with the torrents), and
// the store-wide limits (torrents, total peers, peers per IP) are not enforced; the
// per-torrent limit is.
//
// Key hashes are keyed with a secret the instances share (created once in Redis), so a peer
// may move between instances.
package redisstore
