// Package metafile makes, reads and verifies .torrent files (BEP 3 metainfo, with BEP 12
// announce lists, BEP 19 web seeds, BEP 27 private flag, BEP 47 pad files and BEP 52 v1+v2
// hybrids).
//
// Make walks the payload in a stable order, hashes it in parallel with bounded memory and
// writes the torrent atomically. Load reads a torrent from an untrusted source and refuses
// anything that could make a caller touch a path outside its data directory or allocate
// without bound. Verify re-hashes a payload against a loaded torrent.
package metafile
