// Package metafile makes, reads and verifies .torrent files (BEP 3 metainfo, with BEP 12
// announce lists, BEP 19 web seeds, BEP 27 private flag, BEP 47 pad files and BEP 52 v1+v2
// hybrids).
//
// Make walks the payload in a stable order, hashes it in parallel with bounded memory and
// writes the torrent atomically. Load reads a torrent from an untrusted source and refuses
// anything that could make a caller touch a path outside its data directory or allocate
// without bound: only regular files are read, and Limits bound the size, the files (counted
// in the raw bencode before the file list is decoded) and the pieces; piece lengths under
// 16 KiB and two files at one path are refused. Escape makes a torrent's strings safe to
// print on a terminal. Verify re-hashes a payload against a loaded torrent.
package metafile
