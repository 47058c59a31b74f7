package bittorrent

// HandshakePrefix starts every peer handshake (BEP 3): the length byte 19 and the protocol
// name. The tracker's NAT check sends it; seedctl's wire package sends and expects it.
const HandshakePrefix = "\x13BitTorrent protocol"

// The UDP tracker protocol's constants (BEP 15), shared by the tracker's UDP frontend, the
// tracker client and the load generator.
const (
	// UDPProtocolID is the magic a connect request carries in place of a connection ID.
	UDPProtocolID = 0x41727101980

	// The action field of every request and reply.
	UDPConnect  = 0
	UDPAnnounce = 1
	UDPScrape   = 2
	UDPError    = 3
)
