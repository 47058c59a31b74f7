// Package dfile saves and loads the tracker's state file (bttrack's --dfile).
//
// The layout is mainline bttrack 3.4.2's bencoded dictionary, so either tracker can read the
// other's file:
//
//	{"peers":     {info_hash (20 raw bytes): {peer_id (20 raw bytes): {"ip": "a.b.c.d", "port": N, "left": N, ...}}},
//	 "completed": {info_hash: N}}
//
// Each peer dictionary also carries keys of our own, which bttrack ignores: "seen" (Unix time of
// the last announce), "counted" (its completion was counted) and "hidden" (its NAT check has
// not passed). No key is saved (bttrack's "key" holds the raw key, which we do not keep; the
// store's key hashes are keyed with a per-process secret): a restored peer is keyless until
// it announces again from its own address, and cannot move to another address before that. A file written by bttrack lacks them: its peers are taken as seen
// at load time, and hidden when bttrack's "nat" says their NAT check failed. "left" is 0 for a
// seeder and 1 for a leecher (the store keeps no byte count; bttrack only compares it with 0).
// "nat" is written for bttrack's sake: 0 for a visible IPv4 peer, 1 otherwise (bttrack hands
// out only nat=0 peers and cannot pack an IPv6 address).
//
// Unlike bttrack, which rewrites the file in place, Save is atomic: a temporary file in the same
// directory is written, synced and renamed over the old one, and the directory is synced. A file
// that cannot be read or decoded is moved aside (PATH.corrupt-YYYYmmddTHHMMSS), never deleted,
// and loading goes on with an empty state. Saver runs saves on an interval and at shutdown.
//
// Both directions stream, so that a million peers cost memory in proportion to the biggest
// torrent, not to the whole state: Save lists and sorts the info-hashes (24 bytes a torrent),
// then copies, sorts and writes one torrent's peers at a time; Load reads the file with a
// small bencode reader, checking it whole in a first pass and restoring it one torrent at a
// time in a second.
package dfile
