// Package picker decides which blocks a downloading torrent asks its peers and web seeds for.
//
// It implements the piece selection BEP 3 describes and the practice the field settled on:
//
//   - Strict priority: blocks of pieces already started are handed out before any new piece
//     is started, and a peer is given the pieces it started itself first, so few pieces are
//     partial at once and each completes (and can be verified and shared) soon.
//   - Rarest first: new pieces are taken in order of availability (how many peers have them),
//     ties broken at random by the Picker's own PCG source. Availability is kept in buckets of
//     one flat array (the idea of libtorrent's piece_picker): a HAVE moves one piece one bucket
//     in O(1), so Pick costs O(blocks returned + pieces skipped) and never sorts.
//   - Seeds (a full BITFIELD, HAVE ALL of BEP 6, or HAVEs that complete the set) are counted
//     once, not per piece: they raise every piece's availability alike and change no order.
//   - A BITFIELD replaces a peer's have-set whenever it comes (aria2 sends one mid-connection).
//   - BEP 6: a choked peer may be asked only for its allowed-fast pieces; REJECT gives a block
//     back to the pool.
//   - Endgame: once every missing block is outstanding somewhere, a block is also requested from
//     other peers that have it (never twice from one peer); Received names the peers to CANCEL.
//   - Web seeds (BEP 19): PickRun reserves runs of whole, contiguous pieces nobody has started,
//     lowest index first (a web seed reads a file sequentially; peers meanwhile take the rarest,
//     randomly placed pieces, so the two rarely meet).
//
// A Picker is pure logic: no goroutines, no I/O, no clock. It is not safe for concurrent use;
// the torrent's event loop owns it. Steady-state calls do not allocate.
package picker
