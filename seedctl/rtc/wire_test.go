package rtc

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// TestWireHandshake: the peer wire handshake and a message run over a data channel as over
// TCP, the offerer initiating (as webtorrent's initiator does) and the answerer accepting.
// Browsers never speak MSE: connections from this package take wire.Off.
func TestWireHandshake(t *testing.T) {
	ac, bc := pair(t, newTransport(t, Config{}), newTransport(t, Config{}))
	defer ac.Close()
	defer bc.Close()
	ih := bittorrent.InfoHash{7, 7, 7}
	cfgA := &wire.Config{PeerID: peerID("a"), Reserved: wire.DefaultReserved, Encryption: wire.Off}
	cfgB := &wire.Config{PeerID: peerID("b"), Reserved: wire.DefaultReserved, Encryption: wire.Off,
		Known: func(h bittorrent.InfoHash) bool { return h == ih }}
	ac.SetDeadline(time.Now().Add(30 * time.Second))
	bc.SetDeadline(time.Now().Add(30 * time.Second))
	type result struct {
		c   *wire.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := wire.Accept(bc, cfgB)
		accepted <- result{c, err}
	}()
	wa, err := wire.Initiate(ac, cfgA, ih)
	if err != nil {
		t.Fatalf("initiate: %v", err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	if wa.Peer.PeerID != cfgB.PeerID || r.c.Peer.PeerID != cfgA.PeerID || !wa.Peer.Reserved.Fast() {
		t.Fatalf("handshakes: %+v / %+v", wa.Peer, r.c.Peer)
	}
	msg := wire.AppendMessage(nil, &wire.Message{ID: wire.Interested})
	if _, err := wa.Writer.Write(msg); err != nil {
		t.Fatal(err)
	}
	var got wire.Message
	if err := wire.NewReader(r.c.Reader, r.c.Limits(wire.DefaultReserved)).Read(&got); err != nil || got.ID != wire.Interested {
		t.Fatalf("read %+v, %v", got, err)
	}
}

// TestTorrentCap: a client never holds more PeerConnections than its MaxPeers, and a slot
// given back twice counts once.
func TestTorrentCap(t *testing.T) {
	m := NewMetrics(nil)
	cl, err := NewClient(ClientConfig{Transport: newTransport(t, Config{Metrics: m}), HandleConn: func(c net.Conn, _ bool) { c.Close() }, MaxPeers: 2})
	if err != nil {
		t.Fatal(err)
	}
	r1, ok1 := cl.take()
	_, ok2 := cl.take()
	if _, ok3 := cl.take(); !ok1 || !ok2 || ok3 {
		t.Fatalf("takes: %v %v %v, want two of the cap of 2", ok1, ok2, ok3)
	}
	r1()
	r1()
	if _, ok := cl.take(); !ok || cl.Peers() != 2 {
		t.Fatalf("after one release: ok %v, %d peers", ok, cl.Peers())
	}
	if _, ok := cl.take(); ok {
		t.Fatal("a double release freed two slots")
	}
	if n := testutil.ToFloat64(m.refused.WithLabelValues("torrent_cap")); n != 2 {
		t.Errorf("refused{torrent_cap} = %v, want 2", n)
	}
}
