// Package resume keeps what a restart needs to avoid re-hashing a torrent's payload, and
// checks a payload against its torrent.
//
// A Record is saved as a bencoded dictionary (BEP 3's encoding): the info-hash, the pieces
// held in the BITFIELD layout of BEP 3, the size and modification time of every file, whether
// the last run ended cleanly, and the transfer totals. Save writes it atomically (a temporary
// file in the same directory, fsync, rename, fsync of the directory), so a crash leaves
// either the old record or the new one. Load refuses a record that is truncated, altered
// (a SHA-1 over the record is stored with it) or of an unknown version with ErrCorrupt; the
// caller moves such a file aside and checks everything.
//
// Check decides which pieces the payload holds, in one of three modes:
//
//   - Full hashes every piece (SHA-1 of BEP 3, and the BEP 52 piece hash for v2 and hybrid
//     torrents), in parallel, reading each piece in large sequential chunks.
//   - Fast trusts the record without reading the payload when the record is Clean (the last
//     run stopped normally) and every file's size and modification time equal the recorded
//     ones exactly. When the record is not Clean (the last run was writing and did not stop
//     normally), it trusts a piece only if the record marks it as held and no file it
//     touches changed size or modification time since the record was saved; every other
//     piece (those of changed files, and those not marked as held, which may have been
//     completed after the last save) is hashed. So after a crash only what was being written
//     is re-verified, and unchanged seeding payloads are trusted. A Clean record whose stamps
//     differ, or no usable record, means Full.
//   - None hashes nothing: every piece whose files all exist at full length counts as held
//     (seed as is). It is for a payload known to be good: a payload opened for writing has
//     every file allocated at full length, so None would claim every piece of it.
//
// A record's file stamps must be those the files had when the pieces it marks held were
// hashed (storage.Files.Stamps), not what a stat returns at save time: a file changed in
// between differs from its stamp, and Fast hashes it. A seed that lost pieces to such a
// change saves its record not Clean, so that those pieces are hashed, not taken as
// missing. Stamps are size and modification time: a content change that keeps both (a
// copy with preserved times, or within one tick of a coarse clock) is not seen at start;
// a running seed also compares change time and inode.
package resume
