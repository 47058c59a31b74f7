package job

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// WebSocketTrackers lists the torrent's ws:// and wss:// (WebTorrent) tracker URLs.
func WebSocketTrackers(tiers [][]string) []string {
	var urls []string
	for _, tier := range tiers {
		for _, u := range tier {
			l := strings.ToLower(u)
			if strings.HasPrefix(l, "ws://") || strings.HasPrefix(l, "wss://") {
				urls = append(urls, u)
			}
		}
	}
	return urls
}

// OnlyWebSocketTrackers reports whether tiers list trackers and every one is ws:// or wss://:
// such a torrent reaches peers over WebRTC alone.
func OnlyWebSocketTrackers(tiers [][]string) bool {
	n := urlCount(tiers)
	return n > 0 && len(WebSocketTrackers(tiers)) == n
}

// urlCount is the number of tracker URLs in tiers.
func urlCount(tiers [][]string) int {
	n := 0
	for _, tier := range tiers {
		n += len(tier)
	}
	return n
}

// runWebRTC announces the torrent to each of its WebSocket trackers over j.cfg.WebRTC and
// hands the peers it connects, after the wire handshake, to sess like TCP peers. The
// clients run on wg until ctx ends; it returns them, so that a completed download can be
// told to their trackers.
func (j *Job) runWebRTC(ctx context.Context, wg *sync.WaitGroup, sess *session.Torrent) []*rtc.Client {
	if j.cfg.WebRTC == nil {
		return nil
	}
	ih := j.cfg.Torrent.InfoHash
	wcfg := wire.Config{Reserved: wire.DefaultReserved, PeerID: j.cfg.Session.PeerID}
	if j.cfg.Session.Wire != nil {
		wcfg = *j.cfg.Session.Wire
	}
	wcfg.Encryption = wire.Off // browsers never speak MSE over WebRTC
	wcfg.Known = func(h bittorrent.InfoHash) bool { return h == ih }
	handle := func(nc net.Conn, outgoing bool) {
		nc.SetDeadline(time.Now().Add(session.HandshakeTimeout))
		var c *wire.Conn
		var err error
		if outgoing {
			c, err = wire.Initiate(nc, &wcfg, ih)
		} else {
			c, err = wire.Accept(nc, &wcfg)
		}
		if err != nil {
			j.log.Debug("webrtc handshake", "err", err)
			nc.Close()
			return
		}
		nc.SetDeadline(time.Time{})
		sess.HandleConn(c)
	}
	var clients []*rtc.Client
	for _, url := range WebSocketTrackers(j.cfg.Torrent.Trackers) {
		cl, err := rtc.NewClient(rtc.ClientConfig{
			URL: url, InfoHash: ih, PeerID: j.cfg.Session.PeerID,
			Transport: j.cfg.WebRTC, HandleConn: handle, MaxPeers: j.cfg.WebRTCPeers,
			Left: func() int64 { return sess.Stats().Left }, Log: j.log,
		})
		if err != nil {
			j.log.Warn("webrtc", "url", url, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.Run(ctx)
		}()
		clients = append(clients, cl)
	}
	return clients
}
