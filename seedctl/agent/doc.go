// Package agent runs many torrents in one process: it seeds every .torrent
// found under a directory through one listen port, one announce scheduler and
// shared rate and connection limits, keeping an idle torrent down to a few
// kilobytes so that tens of thousands can be served by a single agent.
//
// Peer wire traffic follows BEP 3 (with BEP 6 fast extension and BEP 10
// extension protocol via seedctl/session); trackers are spoken to over HTTP
// (BEP 3, BEP 23 compact peers) and UDP (BEP 15) with multi-tracker tiers
// (BEP 12) through seedctl/announcer.
//
// Every .torrent in the directory is untrusted input: it is read only when it is a regular
// file (opened without blocking, so a FIFO cannot stall the scan), within Config.TorrentLimits
// (see metafile.Limits). A file refused is remembered with the size and modification time it
// was read with and skipped until they change, so a hostile file costs one parse, not one per
// rescan (webswarm_seed_torrent_files_refused_total, _skipped_total, _bad).
//
// Payload files changed while seeding: a running session learns of it from one inotify
// watcher shared by every session (job.Watcher) and from its own poll, stops serving the
// changed file's pieces and hashes them again; list shows it checking, then in error with
// the pieces that still match. An idle torrent (no session) is checked again when a file
// event names its payload. Resume records never vouch for a file changed since it was
// hashed, so a restart's fast check hashes it.
package agent
