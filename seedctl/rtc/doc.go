// Package rtc carries the BitTorrent peer wire protocol over WebRTC data channels, so that
// seedctl serves browsers (the webtorrent client) with the session engine it uses for TCP
// peers: one engine, two transports.
//
// A browser cannot listen for connections; peers meet through a WebSocket tracker (the
// WebTorrent protocol, served by tracker/wsapi): an announce carries SDP offers, the tracker
// relays each to another peer of the swarm, and that peer's answer comes back with the
// offer's offer_id. Client speaks that protocol for one torrent to one ws:// or wss://
// tracker: it makes offers only when it announces and has room for peers, expires those
// unanswered after the tracker's offer age, and answers relayed offers. The Clients of one
// Transport share one WebSocket per tracker URL (up to TorrentsPerSocket torrents a socket),
// as webtorrent does: every message names its info_hash, so an agent seeding many torrents
// holds a few sockets, not one a torrent; the socket reconnects with backoff. Offers and
// answers are complete (ICE gathering finished: no trickle), as webtorrent's simple-peer
// sends them.
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
// Limits: peers per torrent (Client) and per process (Transport's MaxPeers); offers waiting
// for an answer per torrent (Client's MaxPending) and per process (MaxOffers), which are not
// peers, so that idle torrents' offers never take the room of browsers; the time an offer
// waits for its answer and a connection for its data channel; the tracker's message size
// and the tracker messages queued for one torrent (a flooding tracker's excess is dropped).
// Every PeerConnection is closed, and its UDP sockets released, when its peer leaves, its
// offer expires, the client stops or the Transport closes (Close also ends the tracker
// sockets and every goroutine the Transport started).
package rtc
