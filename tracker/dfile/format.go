package dfile

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"slices"

	"github.com/webswarm/webswarm/internal/benc"
	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// torrentEntry is what a save keeps of every torrent: 24 bytes, so the sorted list of a
// million torrents costs 24 MB, while peers are copied one torrent at a time.
type torrentEntry struct {
	ih         bittorrent.InfoHash
	downloaded uint32
}

// peerSnap is a PeerRecord packed without pointers (56 bytes against 88): the one torrent
// being encoded is copied out of the store's lock into these, then sorted and written.
type peerSnap struct {
	id    bittorrent.PeerID
	ip    [16]byte // IPv4 as ::ffff:a.b.c.d
	port  uint16
	flags uint8
	seen  int64
}

const (
	snapSeeder = 1 << iota
	snapHidden
	snapCounted
)

func packPeer(p *swarm.PeerRecord) peerSnap {
	s := peerSnap{id: p.ID, ip: p.Addr.Addr().As16(), port: p.Addr.Port(), seen: p.LastSeen.Unix()}
	if p.Seeder {
		s.flags |= snapSeeder
	}
	if p.Hidden {
		s.flags |= snapHidden
	}
	if p.Counted {
		s.flags |= snapCounted
	}
	return s
}

func (s *peerSnap) addr() netip.Addr { return netip.AddrFrom16(s.ip).Unmap() }

// listTorrents returns every torrent's info-hash and completions, sorted by info-hash.
func listTorrents(store swarm.Store) []torrentEntry {
	// Sized from the total (plus slack for announces in between) so the list is not regrown.
	n := store.Totals().Torrents
	list := make([]torrentEntry, 0, n+n/16+16)
	store.RangeTorrents(func(ih bittorrent.InfoHash, c swarm.Counts) bool {
		list = append(list, torrentEntry{ih: ih, downloaded: c.Downloaded})
		return true
	})
	slices.SortFunc(list, func(a, b torrentEntry) int { return bytes.Compare(a.ih[:], b.ih[:]) })
	return list
}

// encode writes the store's state as a bencoded state file, streaming: the sorted list of
// info-hashes is taken first, then each torrent's peers are copied out of the store (under
// its shard lock, one torrent at a time), sorted and written with no lock held. Memory
// stays bounded by the torrent list and the biggest torrent, not the whole state.
//
// Dictionary keys must be sorted as raw bytes (mainline's bdecode rejects a file whose keys
// are not): torrents by info-hash, peers by peer ID, and each dictionary's fixed keys in order.
// A torrent that goes away between the listing and its turn is written with no peers; one
// that appears in between waits for the next save.
func encode(w io.Writer, store swarm.Store) error {
	torrents := listTorrents(store)
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 0, 8192)
	flush := func() error {
		_, err := bw.Write(buf)
		buf = buf[:0]
		return err
	}

	buf = append(buf, 'd')
	buf = benc.String(buf, "completed")
	buf = append(buf, 'd')
	for i := range torrents {
		// Every torrent, zeros too, as bttrack keeps it.
		t := &torrents[i]
		buf = benc.Bytes(buf, t.ih[:])
		buf = benc.Uint(buf, uint64(t.downloaded))
		if len(buf) > 4096 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	buf = append(buf, 'e')
	buf = benc.String(buf, "peers")
	buf = append(buf, 'd')
	var peers []peerSnap
	copyPeers := func(_ uint32, recs []swarm.PeerRecord) { // one closure for the whole save
		for j := range recs {
			peers = append(peers, packPeer(&recs[j]))
		}
	}
	for i := range torrents {
		t := &torrents[i]
		peers = peers[:0]
		store.Peers(t.ih, copyPeers)
		slices.SortFunc(peers, func(a, b peerSnap) int { return bytes.Compare(a.id[:], b.id[:]) })
		buf = benc.Bytes(buf, t.ih[:])
		buf = append(buf, 'd')
		for j := range peers {
			buf = appendPeer(buf, &peers[j])
			if len(buf) > 4096 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		buf = append(buf, 'e')
		if cap(peers) > 1<<16 {
			peers = nil // one huge torrent's copy is not kept for the rest of the save
		}
	}
	buf = append(buf, 'e', 'e')
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// appendPeer appends peer_id: {counted, hidden, ip, left, nat, port, seen} (keys in byte
// order; counted only when set).
//
// "nat" is bttrack's own key, written so that bttrack loading this file behaves: it hands out
// only peers whose nat is 0, and it would fail on an IPv6 address (it packs every address it
// hands out as IPv4), so hidden and IPv6 peers get 1. "hidden" is ours and authoritative.
// No key is saved: the store's key hashes are keyed with a per-process secret, and bttrack's
// "key" would be the raw key, which we do not keep. Restored peers learn their key again.
func appendPeer(buf []byte, p *peerSnap) []byte {
	hidden := p.flags&snapHidden != 0
	buf = benc.Bytes(buf, p.id[:])
	buf = append(buf, 'd')
	if p.flags&snapCounted != 0 {
		buf = benc.KeyInt(buf, "counted", 1)
	}
	buf = benc.KeyInt(buf, "hidden", b2i(hidden))
	buf = benc.String(buf, "ip")
	var ipBuf [64]byte
	ip := p.addr()
	buf = benc.Bytes(buf, ip.AppendTo(ipBuf[:0]))
	buf = benc.KeyInt(buf, "left", b2i(p.flags&snapSeeder == 0))
	buf = benc.KeyInt(buf, "nat", b2i(hidden || !ip.Is4()))
	buf = benc.KeyInt(buf, "port", int64(p.port))
	buf = benc.KeyInt(buf, "seen", p.seen)
	return append(buf, 'e')
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Stats describe what Load found.
type Stats struct {
	// Torrents and Peers count the entries read from the file. The store drops peers that
	// have expired since they were saved, and torrents left with neither peers nor completions.
	Torrents int
	Peers    int
	// Legacy counts peers without our keys (a file bttrack wrote): they are taken as seen now.
	Legacy int
	// Skipped counts malformed entries left out: a wrong-length info-hash or peer ID, an
	// address that does not parse, a port outside 1..65535.
	Skipped int
	// Refused counts torrents the store refused (its torrent limit).
	Refused int
}
