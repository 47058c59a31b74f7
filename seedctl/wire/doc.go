// Package wire speaks the BitTorrent peer wire protocol on one connection: the handshake,
// optional stream encryption, and the message codec. It holds no torrent state; the session
// above it decides what to send and what a message means.
//
// Implemented:
//   - BEP 3, The BitTorrent Protocol Specification: the 68-byte handshake and every message
//     (keep-alive, choke, unchoke, interested, not interested, have, bitfield, request, piece,
//     cancel) plus port (BEP 5, id 9).
//   - BEP 6, Fast Extension: reserved bit 0x04 of byte 7; have all, have none, suggest piece,
//     reject request, allowed fast.
//   - BEP 10, Extension Protocol: reserved bit 0x10 of byte 5; message 20 and the extended
//     handshake dictionary (m, v, reqq, p, yourip, metadata_size).
//   - BEP 9, Extension for Peers to Send Metadata Files: ut_metadata request, data and reject.
//   - Message Stream Encryption / Protocol Encryption (MSE/PE, the Vuze specification every
//     client implements), through github.com/anacrolix/torrent/mse: offered on outgoing
//     connections and accepted on incoming ones, where plaintext and encrypted peers are told
//     apart by their first bytes.
//
// Connections: Accept answers an incoming connection for any of many torrents (one listen
// port serves them all); Initiate opens one for a given torrent; Dial adds the plaintext
// fallback of the "prefer" encryption policy. Timeouts are the caller's: set deadlines on the
// net.Conn before calling them and while reading or writing messages.
//
// Codec: a Reader decodes messages from a bufio.Reader into a Message the caller reuses,
// without allocating for the common messages; a PIECE's block goes straight into a buffer the
// caller chooses. A Writer appends messages to one buffer and writes it with one call per
// Flush. Every limit a hostile peer can hit is a distinct error (errors.Is), so the caller can
// count each kind and drop the connection; a message with an unknown id is skipped,
// counted and returned as just its id, never an error.
//
// Why a codec of our own rather than github.com/anacrolix/torrent/peer_protocol (a library
// is preferred unless there is a reason, docs/architecture.md): its Decoder allocates per message
// (a BITFIELD becomes a []bool, an extended payload a new slice), fails on an unknown
// message id, has no per-kind limits to count, cannot read a block into the caller's piece
// buffer, and imports anacrolix/dht, which this module does not otherwise need. The benchmarks here show 0 allocations for
// HAVE, REQUEST and PIECE.
//
// MSE through anacrolix/torrent/mse fits, with four things to know: the receiver finds the
// torrent by trying every served info-hash (Config.InfoHashes; one SHA-1 each, per
// encrypted incoming connection); the handshake runs a goroutine per read and write
// (bounded by the connection's deadline); its RC4 writer must not be used after a failed
// write (Writer.Flush makes its first error sticky for that reason); and RC4 costs about
// ten times the CPU of plaintext per byte (BenchmarkConn), which is why Prefer settles
// for header obfuscation when the peer offers it.
package wire
