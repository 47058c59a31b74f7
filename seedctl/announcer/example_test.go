package announcer_test

import (
	"context"
	"fmt"
	"net/netip"
	"os/signal"
	"syscall"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/announcer"
)

// A seeder announces until interrupted, hands the peers it learns to its session, and
// says "stopped" on the way out.
func Example() {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	a, err := announcer.New(announcer.Config{
		Tiers:    [][]string{{"http://tracker.example/announce", "udp://tracker.example:6969"}},
		InfoHash: bittorrent.InfoHash{ /* from the torrent */ },
		PeerID:   bittorrent.PeerID{ /* this client's */ },
		Port:     6881,
		Self:     []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:6881")},
		Progress: func() announcer.Progress { return announcer.Progress{Left: 0} },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		for peers := range a.Peers() { // closed when Run returns
			_ = peers // session.AddPeers(peers)
		}
	}()
	a.Run(ctx)
	stopCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := a.Stop(stopCtx); err != nil {
		fmt.Println(err)
	}
}
