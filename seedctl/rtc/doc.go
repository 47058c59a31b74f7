// Package rtc carries the BitTorrent peer wire protocol over WebRTC data channels, so that
// seedctl serves browsers (the webtorrent client) with the session engine it uses for TCP
// peers: one engine, two transports.
//
// A browser cannot listen for connections; peers meet through a WebSocket tracker (the
// WebTorrent protocol, served by tracker/wsapi): an announce carries SDP offers, the tracker
// relays each to another peer of the swarm, and that peer's answer comes back with the
// offer's offer_id. Client speaks that protocol to one ws:// or wss:// tracker for one
// torrent: it makes offers only when it announces and has room for peers, expires those
// unanswered after the tracker's offer age, answers relayed offers, and reconnects with
// backoff. Offers and answers are complete (ICE gathering finished: no trickle), as
// webtorrent's simple-peer sends them.
//
// Transport owns the pion WebRTC stack: one PeerConnection per peer with one ordered,
// reliable data channel, detached (SettingEngine.DetachDataChannels) into a net.Conn the wire
// handshake and the session read and write like a TCP socket. ICE gathers host candidates
// only unless STUN servers are given, on an optional UDP port range and bind address, with
// mDNS off. Writes are split into 16 KiB messages (what every browser accepts) and wait while
// more than 1 MiB is queued in SCTP, so a browser that does not read holds a bounded amount
// of our memory and the session's write timeout applies as on TCP. Browsers never speak MSE
// over WebRTC: the wire handshake on these connections takes wire.Off, the offerer initiating.
//
// Limits: peers per torrent (Client) and per process (Transport), offers pending an answer,
// the time an offer waits for its answer and a connection for its data channel, and the
// tracker's message size. Every PeerConnection is closed, and its UDP sockets released,
// when its peer leaves, its offer expires or the client stops.
package rtc
