// Package session runs one torrent in a swarm: its peer connections, the choker that decides
// whom we upload to, serving requests from the payload on disk, downloading missing pieces
// (with web seeds beside peers), and the metadata exchange for magnet links.
//
// Implemented:
//   - BEP 3, The BitTorrent Protocol Specification: the peer protocol's state machine
//     (choking, interest, HAVE, REQUEST/PIECE/CANCEL), choking and optimistic unchoking
//     (package choker), keep-alives.
//   - BEP 6, Fast Extension: HAVE ALL / HAVE NONE instead of a BITFIELD, REJECT REQUEST for
//     every request we will not serve (while choked, cancelled, over the queue), ALLOWED FAST
//     sets for new peers, served while they are choked.
//   - BEP 10, Extension Protocol: the extended handshake (client name, reqq, listen port,
//     yourip, metadata_size, ut_metadata).
//   - BEP 9, Extension for Peers to Send Metadata Files: served from the torrent's info
//     dictionary, and fetched by FetchMetadata for magnet links.
//   - BEP 19, WebSeed (GetRight style): web seeds fetch whole runs of pieces (1 to 8 MiB,
//     about two seconds of the seed's rate) that no peer has started, beside peers; their
//     pieces are hashed like any others. A seed that is not found, ignores Range on a large
//     file, sends bad data or fails five times in a row is dropped (and counted); a run
//     that outlives a second while a peer with its pieces has nothing left to do is given
//     to the peers.
//
// Shape (after cenkalti/rain): one event-loop goroutine per torrent (Torrent.Run) owns all
// torrent state — the peer table, the choker, the piece picker, the pieces being assembled.
// Each connection has a reader goroutine, which decodes messages (reading PIECE blocks
// straight into the pieces being assembled) into the peer's inbox and rings the loop when
// the inbox was empty, so the loop takes a whole batch per hand-off, and a writer
// goroutine, which sends what the loop queued and serves the peer's requests. Requests go
// out in batches too (a peer's queue is topped up when an eighth of it is free), and
// pieces are hashed and written off the loop. Nothing the loop does blocks on a peer: it appends messages to the
// peer's outbound buffer and wakes its writer. REQUEST and CANCEL go from the reader straight
// to the writer's queue, under the peer's lock, so the serving path never waits for the loop.
// Every goroutine is stopped (close channel, done channel) and every connection closed when
// Run returns.
//
// Hostile or broken peers — a message over its limit, a request outside the torrent or over
// 128 KiB, a bad BITFIELD, an unknown info-hash, silence — end only their own connection, are
// counted in Metrics by reason, and never block other peers. A BITFIELD after other messages
// replaces the peer's have-set, as aria2 expects.
//
// Cheap attacks on the listener and the upload slots are bounded (ServeConfig, Config):
// Serve runs at most 64 handshakes at once and 8 from one address (an IPv4 address or an
// IPv6 /64), gives a new connection 5 s to send its first byte and 10 s for the whole
// handshake, and when every slot is taken closes the oldest pending handshake rather than
// refuse the new connection, so silent sockets only push each other out. A torrent keeps
// at most 8 connections with one address. A peer whose socket takes none of our data for
// UploadStallTimeout (10 s: it does not read) is choked and left out of the choker until it
// drains (WriteTimeout disconnects it after 60 s); a slot holder that asks for nothing for
// as long gives its slot to a peer that waits; and a new peer queues for a seeding slot
// behind those already waiting, so a hog that reconnects does not rank first.
//
// A payload changed under a seed (an admin copying a new big.iso over the old one, cutting
// it short, deleting it, renaming another file over it) is never served as verified: the
// torrent stats its files every Config.PayloadCheckInterval, at once when PayloadChanged is
// called (a file notification) or a read fails, and whenever a file is opened again. The
// pieces of a changed file leave the have-set at once (requests queued for them get a
// REJECT, or a CHOKE and UNCHOKE for a peer without BEP 6), are hashed again off the loop,
// and those that match come back with a HAVE to every peer; the others stay missing (Stats
// shows Have and Left, and Rechecking while it hashes). Each change is logged and counted
// (webswarm_seed_payload_changes_total{kind}, webswarm_seed_pieces_invalidated_total,
// webswarm_seed_pieces_rechecked_total{result}). Bytes written in place between two looks
// at the file can still go out: peers hash every piece, and the window is the poll interval
// or the notification's latency.
package session
