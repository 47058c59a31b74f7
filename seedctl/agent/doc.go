// Package agent runs many torrents in one process: it seeds every .torrent
// found under a directory through one listen port, one announce scheduler and
// shared rate and connection limits, keeping an idle torrent down to a few
// kilobytes so that tens of thousands can be served by a single agent.
//
// Peer wire traffic follows BEP 3 (with BEP 6 fast extension and BEP 10
// extension protocol via seedctl/session); trackers are spoken to over HTTP
// (BEP 3, BEP 23 compact peers) and UDP (BEP 15) with multi-tracker tiers
// (BEP 12) through seedctl/announcer.
package agent
