package wire

import "errors"

// Errors the handshake returns. Each is wrapped with detail; test with errors.Is.
var (
	// ErrBadProtocol: the peer's handshake does not start with 19 "BitTorrent protocol".
	ErrBadProtocol = errors.New("wire: not a BitTorrent handshake")
	// ErrUnknownInfoHash: the peer asked for a torrent we do not serve, or answered with
	// another torrent's info-hash than the one we asked for.
	ErrUnknownInfoHash = errors.New("wire: unknown info-hash")
	// ErrEncryptionRequired: a plaintext peer, or an MSE peer that offers no RC4, while the
	// policy is Require.
	ErrEncryptionRequired = errors.New("wire: peer does not encrypt and encryption is required")
	// ErrEncryptionDisabled: an MSE handshake arrived while the policy is Off.
	ErrEncryptionDisabled = errors.New("wire: encrypted handshake and encryption is off")
	// ErrMSE: the MSE/PE handshake failed (no shared secret, no known info-hash, garbage).
	ErrMSE = errors.New("wire: encryption handshake failed")
	// ErrSelfConnection: the peer's ID is our own (we connected to ourselves).
	ErrSelfConnection = errors.New("wire: connected to self")
)

// Errors the message Reader returns. Each ends the connection: the stream may be
// desynchronised or the peer is hostile. Each is wrapped with detail; test with errors.Is.
var (
	// ErrMessageTooLong: a length prefix over Limits.MaxMessage (1 MiB by default).
	ErrMessageTooLong = errors.New("wire: message too long")
	// ErrPieceTooLong: a PIECE whose block is longer than Limits.MaxBlock.
	ErrPieceTooLong = errors.New("wire: piece block too long")
	// ErrRequestTooLong: a REQUEST, CANCEL or REJECT for more than MaxRequest (128 KiB).
	ErrRequestTooLong = errors.New("wire: request too long")
	// ErrRequestOutside: a REQUEST the caller's Limits.ValidRequest refused (outside the
	// torrent, past the end of its piece).
	ErrRequestOutside = errors.New("wire: request outside the torrent")
	// ErrBadBitfield: a BITFIELD of the wrong length for the torrent, or with spare bits set.
	ErrBadBitfield = errors.New("wire: bad bitfield")
	// ErrIndexOutside: a HAVE, SUGGEST or ALLOWED FAST naming a piece the torrent lacks.
	ErrIndexOutside = errors.New("wire: piece index outside the torrent")
	// ErrBadLength: a message whose length does not fit its id (a HAVE of 3 bytes...).
	ErrBadLength = errors.New("wire: bad message length")
	// ErrNotNegotiated: a Fast (BEP 6) or extended (BEP 10) message from a peer that did
	// not set the reserved bit; BEP 6 says to close the connection.
	ErrNotNegotiated = errors.New("wire: extension message not negotiated")
	// ErrBadExtended: an extended handshake or ut_metadata message that does not decode.
	ErrBadExtended = errors.New("wire: bad extended message")
)
