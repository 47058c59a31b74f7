package wire

import "strconv"

// ID is a message's id byte (BEP 3, 5, 6, 10). KeepAlive is not on the wire: it stands for
// the zero-length message.
type ID int16

// Message ids.
const (
	KeepAlive     ID = -1 // a zero-length message
	Choke         ID = 0
	Unchoke       ID = 1
	Interested    ID = 2
	NotInterested ID = 3
	Have          ID = 4  // Index
	BitfieldMsg   ID = 5  // Bitfield
	Request       ID = 6  // Index, Begin, Length
	Piece         ID = 7  // Index, Begin, Block
	Cancel        ID = 8  // Index, Begin, Length
	Port          ID = 9  // Port (BEP 5, DHT)
	Suggest       ID = 13 // Index (BEP 6)
	HaveAll       ID = 14 // BEP 6
	HaveNone      ID = 15 // BEP 6
	Reject        ID = 16 // Index, Begin, Length (BEP 6)
	AllowedFast   ID = 17 // Index (BEP 6)
	Extended      ID = 20 // ExtendedID, Payload (BEP 10)
)

var idNames = [...]string{"choke", "unchoke", "interested", "not interested", "have", "bitfield",
	"request", "piece", "cancel", "port", "", "", "", "suggest", "have all", "have none",
	"reject", "allowed fast", "", "", "extended"}

// Known reports whether id is a message this package decodes (KeepAlive included).
func (id ID) Known() bool {
	return id == KeepAlive || id >= 0 && int(id) < len(idNames) && idNames[id] != ""
}

// String names the message as BEP 3/6/10 do.
func (id ID) String() string {
	if id == KeepAlive {
		return "keep-alive"
	}
	if id.Known() {
		return idNames[id]
	}
	return "unknown(" + strconv.Itoa(int(id)) + ")"
}

// Limits on what a peer may send; the defaults are those of every mainstream client.
const (
	// DefaultMaxMessage is the longest message accepted (length prefix), 1 MiB.
	DefaultMaxMessage = 1 << 20
	// BlockSize is the block length every client requests (16 KiB).
	BlockSize = 16 << 10
	// MaxRequest is the longest block a REQUEST may ask for (128 KiB, as libtorrent); it is
	// also the upper bound of Limits.MaxBlock.
	MaxRequest = 128 << 10
	// HandshakeLen is the length of the BEP 3 handshake.
	HandshakeLen = 68
	// pieceHeader is a PIECE's length prefix, id, index and begin.
	pieceHeader = 13
)

// Message is one decoded message. A Reader fills the fields the message's ID uses and
// leaves the others as they were; reuse one Message for a whole connection.
//
// Bitfield and Payload alias the Reader's buffer and Block the buffer the Reader's
// BlockBuffer returned (or the Reader's own): they are valid until the next Read.
type Message struct {
	ID     ID
	Index  uint32 // Have, Request, Piece, Cancel, Suggest, Reject, AllowedFast
	Begin  uint32 // Request, Piece, Cancel, Reject
	Length uint32 // Request, Cancel, Reject
	Port   uint16 // Port

	Bitfield []byte // BitfieldMsg: the raw payload, checked against Limits.NumPieces
	Block    []byte // Piece

	ExtendedID byte   // Extended: 0 is the extended handshake, else the id we assigned
	Payload    []byte // Extended: everything after the extended id
}
