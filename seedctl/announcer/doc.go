// Package announcer is seedctl's tracker client: it tells a torrent's trackers that this peer
// takes part in the swarm and hands the peers they return to the session.
//
// Protocols:
//   - BEP 3 HTTP(S) announces with byte-exact percent-escaping of info_hash and peer_id, the
//     events started, completed and stopped, numwant, key (a random 32-bit value per
//     Announcer, sent as 8 hexadecimal digits as libtorrent does) and the echoed tracker id;
//     replies honour interval, min interval, failure reason and warning message.
//   - BEP 23 compact peer lists, BEP 3 dictionary peer lists, and BEP 7 peers6.
//   - BEP 12 multitracker tiers: each tier is shuffled once, its trackers are tried in order,
//     the one that answers moves to the front of its tier, and the next tier is tried only
//     when a whole tier fails.
//   - BEP 15 UDP announces and scrapes: connection IDs cached for a minute, retransmission
//     after 15·2ⁿ seconds (the schedule is configurable), transaction IDs checked, error
//     packets reported as failures, IPv4 and IPv6 replies; BEP 41 carries the URL's path and
//     query.
//   - BEP 48 scrapes over HTTP (the announce URL's last "announce" becomes "scrape").
//
// An Announcer runs one loop (Run) that announces "started", then once per interval with a
// little jitter so that many torrents drift apart; failures back off exponentially from 15 s
// (with jitter, capped at the interval). Announce asks for an early announce, which still
// waits for the tracker's min interval. Stop sends "stopped", in parallel, to every tracker
// that has this peer registered.
//
// Errors are classified with errors.Is and errors.As: ErrFailure (and *FailureError, which
// holds the tracker's reason), *StatusError for HTTP statuses other than 200, ErrBadReply for
// replies that do not parse, ErrReplyTooLarge, ErrNoReply for a UDP tracker that never
// answers; network errors are wrapped as the net package returns them.
package announcer
