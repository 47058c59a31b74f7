package session

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// TestFetchMetadataRetriesPeer: the only peer fails its first exchange (the connection is
// closed at once); when the tracker names it again after metadataRetry it is asked again
// and delivers. Before, a peer was tried once per fetch, so one hiccup stalled a magnet
// download for good.
func TestFetchMetadataRetriesPeer(t *testing.T) {
	f := newFixture(t, 64<<10, 16<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) == 1 {
				c.Close() // the first exchange fails
				continue
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", seed.addr.String())
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	flaky := netip.MustParseAddrPort(l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 4*metadataRetry)
	defer cancel()
	peers := make(chan []netip.AddrPort)
	go func() { // a tracker naming the same peer on every announce
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case peers <- []netip.AddrPort{flaky}:
			case <-ctx.Done():
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	info, err := FetchMetadata(ctx, seed.t.InfoHash(), peers, Config{PeerID: peerID('m'), Wire: &wire.Config{PeerID: peerID('m'), Reserved: wire.DefaultReserved, Encryption: wire.Off}})
	if err != nil {
		t.Fatalf("fetch through a peer that failed once: %v (connections: %d)", err, accepted.Load())
	}
	if !bytes.Equal(info, f.mi.InfoBytes) {
		t.Fatal("fetched metadata differs from the info dictionary")
	}
	if n := accepted.Load(); n < 2 {
		t.Fatalf("%d connections, want a retry", n)
	}
}
