// Package redisstore keeps a tracker's swarms in Redis (or Valkey), so that any number of
// tracker instances share one set of swarms.
//
// Layout: every key of one swarm carries the swarm's hash tag, {<info_hash hex>}, so a swarm
// sits in one Redis Cluster slot. A swarm is a meta hash (seeders and leechers by family,
// completions) and four peer hashes, seeders and leechers of each family, whose fields are
// peer IDs and whose values are packed records: compact address, last-seen time (4 bytes),
// flags, and a keyed hash of the client's key only if it sent one. A peer hash is split into
// buckets by linear hashing on the SHA-1 of the peer ID (one bucket split when the hash holds
// more than 48 peers a bucket, merged back below 16), so that every bucket stays under
// Redis's default hash-max-listpack-entries (128) and is a listpack at any swarm size: about
// 51 bytes a keyed IPv4 peer at 1,000,000 peers in 1,000 swarms. A peer is always in the
// bucket its ID names, so one HGET finds it. One announce is one round trip: a Lua script
// (EVALSHA) reads the swarm's counts once, registers, refreshes, moves or removes the peer,
// counts a completion once, writes the counts back once, and returns them with up to numwant
// random peers (HRANDFIELD from the buckets in turn, starting at a random one), never hidden
// or expired ones, as one string of records a family that the tracker copies the compact
// addresses out of.
//
// Walk and Peers read a swarm whole in one script call (atomic, whatever splits are going on),
// Walk in pipelined round trips of about 2,048 peers, so the tracker never holds more.
//
// Expiry: peers expire by the last-seen time in their record. An announce goes on with its
// swarm's pruning pass (HSCAN, about 32 peers examined, its place kept in the meta hash) and
// starts a new pass a sixteenth of the peer timeout after the last one finished; a background
// sweep walks a torrent index split in 16 sets (SSCAN, never KEYS) and every swarm's peers in
// bounded batches.
//
// On a single Redis, the totals, the dead-torrent set and the per-IP counts are global keys
// that the script updates in the same call, so counts and the store-wide limits stay exact
// with any number of instances. Per-IP counts are kept only while a per-IP limit is set (a
// limit set later counts the peers that announce from then on). On a Redis Cluster
// (redis-cluster:// seed nodes; the client follows MOVED/ASK) the script gets only the
// swarm's keys, which share one slot: the index is updated by a second call only when a
// torrent is born or dropped, Totals sums the swarms' own counts (exact with any number of
// instances, its cost growing with the torrents), and the store-wide limits (torrents, total
// peers, peers per IP) are not enforced; the per-torrent limit is.
//
// Key hashes are keyed with a secret the instances share (created once in Redis), so a peer
// may move between instances.
package redisstore
