package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// magnetLeft is the "left" announced while the metadata is unknown: not zero, so the
// tracker counts us as a leecher and seeders are handed out.
const magnetLeft = 16 << 10

// fetchMagnet announces the magnet's info-hash to its trackers and fetches the info
// dictionary from the peers they return (BEP 9).
func fetchMagnet(ctx context.Context, m *metainfo.Magnet, f *peerFlags, scfg session.Config, acfg announcer.Config, enc wire.Encryption, l net.Listener) (*metafile.Torrent, error) {
	ih := bittorrent.InfoHash(m.InfoHash)
	acfg.Tiers = make([][]string, 0, len(m.Trackers))
	for _, tr := range m.Trackers {
		acfg.Tiers = append(acfg.Tiers, []string{tr})
	}
	acfg.InfoHash = ih
	acfg.PeerID = scfg.PeerID
	acfg.Progress = func() announcer.Progress { return announcer.Progress{Left: magnetLeft} }
	acfg.PeerCount = func() int { return 0 }
	ann, err := announcer.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("magnet trackers: %w", err)
	}
	scfg.Wire = &wire.Config{
		PeerID:     scfg.PeerID,
		Reserved:   wire.DefaultReserved,
		Encryption: enc,
		Known:      func(h bittorrent.InfoHash) bool { return h == ih },
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ann.Run(actx)
	}()
	peers := make(chan []netip.AddrPort, 4)
	go func() {
		for {
			select {
			case <-actx.Done():
				return
			case p := <-ann.Peers():
				select {
				case peers <- p:
				case <-actx.Done():
					return
				}
			}
		}
	}()
	info, err := session.FetchMetadata(actx, ih, peers, scfg)
	cancel()
	<-done
	if err != nil {
		return nil, fmt.Errorf("metadata of %x: %w", ih, err)
	}
	// The same limits as a .torrent file's: the metadata comes from strangers too.
	lim, _ := f.limits.limits() // validated with the other flags
	t, err := lim.Parse(torrentFile(&metafile.Torrent{InfoBytes: info}, m.Trackers))
	if err != nil {
		return nil, fmt.Errorf("metadata of %x: %w", ih, err)
	}
	if t.InfoHash != ih {
		return nil, fmt.Errorf("metadata of %x: hashes to %x", ih, t.InfoHash)
	}
	return t, nil
}

// torrentFile is a .torrent holding t's info dictionary as received, with trackers as
// one tier each.
func torrentFile(t *metafile.Torrent, trackers []string) []byte {
	mi := metainfo.MetaInfo{InfoBytes: t.InfoBytes, CreatedBy: "webswarm seedctl (from a magnet link)"}
	if len(trackers) > 0 {
		mi.Announce = trackers[0]
		for _, tr := range trackers {
			mi.AnnounceList = append(mi.AnnounceList, []string{tr})
		}
	}
	b, err := bencode.Marshal(mi)
	if err != nil {
		// MetaInfo with raw info bytes always marshals; this is a programming error.
		panic(fmt.Sprintf("marshal torrent: %v", err))
	}
	return b
}
