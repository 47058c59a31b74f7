// Package wsrelay relays WebTorrent offers and answers between tracker instances that share
// a Redis (or Valkey, or Redis Cluster) store, so that a browser whose WebSocket is held by
// instance A meets a browser held by instance B. It implements wsapi.Relay.
//
// Each instance names itself with a random ID when it starts. Where the peers are: every
// announce of a WebSocket peer writes its peer_id → instance ID into the swarm's hash (key
// "<prefix>ws:{<info_hash hex>}", so a swarm sits in one cluster slot) and refreshes the
// key's expiry (PeerTTL); a peer that leaves is deleted from it. Each write also reads the
// hash's length, which Peers returns: the swarm's peers on all instances.
//
// Target selection: wsapi draws each offer's target at random from the whole swarm — with
// the swarm's peers here and Peers, it draws how many offers go to peers here and how many
// to peers elsewhere, as drawing peers without replacement from all of them would (no
// preference for either). The offers for peers elsewhere come here, and go to random
// fields of the hash (HRANDFIELD, skipping the announcer and this instance's own peers; the
// whole hash, shuffled, while the swarm has at most 512 peers).
//
// Batches: a worker takes the queued joins, leaves, offers and answers (up to
// Options.Batch, waiting at most Options.BatchDelay for more once it has one) and sends
// them in at most three pipelines: every location write and answer with the random fields
// for every offer; the offers; rarely, the removal of peers of a gone instance.
// webswarm_tracker_ws_relay_operations_total against _round_trips_total shows the round
// trips saved (one an operation, at least, without batches).
//
// Transport: each instance subscribes to its own channel "<prefix>wsrelay:{<instance>}"
// with SSUBSCRIBE (sharded pub/sub, Redis ≥ 7), and an offer is sent with SPUBLISH to the
// channel of the target peer's instance. On a Redis Cluster a sharded message goes to the
// one shard that owns the channel's slot, where plain PUBLISH is forwarded to every node of
// the cluster; on one Redis both cost the same. The instance receiving an offer remembers
// offer_id → the offering instance (bounded by wsapi's offer age and MaxRelayPending), and
// the answer goes back by SPUBLISH to that instance's channel, where wsapi checks it
// against the offer it relayed (offer_id, peers, age) before handing it to the offerer. An
// SPUBLISH that reached nobody names a crashed instance: its peer is deleted from the hash.
//
// Bounds: one queue (Options.Queue operations) between the announce path and the worker
// that talks to Redis — a full queue drops, never blocks an announce; messages over
// Options.MaxMessage are dropped; each Redis call is bounded by Options.Timeout. When Redis
// fails, the instance logs it once, sets webswarm_tracker_ws_relay_up to 0 and drops
// cross-instance offers at once (local relaying goes on untouched); the subscriber
// reconnects with a backoff from 100 ms to 5 s, and cross-instance relaying resumes when a
// call succeeds again.
package wsrelay
