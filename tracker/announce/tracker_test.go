package announce

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/swarm"
)

type allowOne bittorrent.InfoHash

func (a allowOne) Allowed(ih bittorrent.InfoHash) bool { return ih == bittorrent.InfoHash(a) }

func newTracker(t *testing.T, cfg Config) *Tracker {
	t.Helper()
	st, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(); st.Close() })
	return tr
}

func req(i int, port uint16) *Request {
	return &Request{
		InfoHash: swarm.SuiteInfoHash(1), PeerID: swarm.SuitePeerID(i),
		Addr: netip.MustParseAddr("127.0.0.1"), Port: port, Left: 1, NumWant: -1, Compact: true,
	}
}

func TestPolicy(t *testing.T) {
	tr := newTracker(t, Config{Interval: 20 * time.Minute, DefaultNumWant: 3, MaxNumWant: 5})
	var resp Response
	for i := range 10 {
		if err := tr.Announce(req(i, uint16(1000+i)), &resp); err != nil {
			t.Fatal(err)
		}
	}
	if resp.Interval != 20*time.Minute || resp.MinInterval != 10*time.Minute {
		t.Errorf("intervals %v %v", resp.Interval, resp.MinInterval)
	}
	if n := len(resp.Peers.V4) / 6; n != 3 {
		t.Errorf("default numwant gave %d peers, want 3", n)
	}
	r := req(0, 1000)
	r.NumWant = 1000
	if err := tr.Announce(r, &resp); err != nil || len(resp.Peers.V4)/6 != 5 {
		t.Errorf("numwant 1000 gave %d peers (err %v), want max_give 5", len(resp.Peers.V4)/6, err)
	}
	r.Compact = false
	if err := tr.Announce(r, &resp); err != nil || len(resp.Peers.V4) != 5*26 || resp.Peers.Format != swarm.WithID {
		t.Errorf("non-compact: %d bytes, format %v, err %v", len(resp.Peers.V4), resp.Peers.Format, err)
	}
	r.Event = swarm.Stopped
	if err := tr.Announce(r, &resp); err != nil || len(resp.Peers.V4) != 0 || resp.Incomplete != 9 {
		t.Errorf("stopped: %d peer bytes, counts %+v, err %v", len(resp.Peers.V4), resp.Counts, err)
	}
	bad := req(1, 0)
	if ce := AsClientError(tr.Announce(bad, &resp)); ce == nil || ce.Code != CodeBadPort {
		t.Errorf("port 0: %v", ce)
	}
}

func TestAllowList(t *testing.T) {
	tr := newTracker(t, Config{Allowed: allowOne(swarm.SuiteInfoHash(1))})
	var resp Response
	if err := tr.Announce(req(1, 1000), &resp); err != nil {
		t.Fatal(err)
	}
	r := req(1, 1000)
	r.InfoHash = swarm.SuiteInfoHash(2)
	ce := AsClientError(tr.Announce(r, &resp))
	if ce == nil || ce.Code != CodeNotAllowed || ce.Reason != NotAuthorized {
		t.Fatalf("unlisted torrent: %v", ce)
	}
	if _, ok := tr.Scrape(swarm.SuiteInfoHash(2)); ok {
		t.Error("scrape of an unlisted torrent answered")
	}
	if c, ok := tr.Scrape(swarm.SuiteInfoHash(1)); !ok || c.Incomplete != 1 {
		t.Errorf("scrape: %+v %v", c, ok)
	}
}

func TestConfigErrors(t *testing.T) {
	st, _ := swarm.NewMemory(swarm.Config{})
	defer st.Close()
	for _, cfg := range []Config{
		{Interval: time.Millisecond},
		{Interval: time.Minute, MinInterval: time.Hour},
		{NATCheck: -1},
	} {
		if _, err := New(cfg, st, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// peerListener answers BitTorrent handshakes on 127.0.0.1 with the given info-hash and peer ID.
func peerListener(t *testing.T, ih bittorrent.InfoHash, id bittorrent.PeerID) uint16 {
	return uint16(testenv.HandshakePeer(t, "127.0.0.1", ih, id))
}

func TestNATCheck(t *testing.T) {
	tr := newTracker(t, Config{NATCheck: 2, NATTimeout: 2 * time.Second, NATHandshake: true})
	var resp Response
	good := peerListener(t, swarm.SuiteInfoHash(1), swarm.SuitePeerID(1))
	liar := peerListener(t, swarm.SuiteInfoHash(1), swarm.SuitePeerID(99))
	if err := tr.Announce(req(1, good), &resp); err != nil {
		t.Fatal(err)
	}
	if err := tr.Announce(req(2, liar), &resp); err != nil {
		t.Fatal(err)
	}
	// A closed port: nothing listens there.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	if err := tr.Announce(req(3, closed), &resp); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.nat.pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := tr.Announce(req(4, 4000), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers.V4) != 6 || binary.BigEndian.Uint16(resp.Peers.V4[4:]) != good {
		t.Fatalf("peers after NAT checks: %x, want only the peer that answered (port %d)", resp.Peers.V4, good)
	}
	if resp.Incomplete != 4 {
		t.Errorf("hidden peers must still count: %+v", resp.Counts)
	}
}

func TestRateLimiter(t *testing.T) {
	l := NewRateLimiter(0.001, 3, 1000)
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("request beyond the burst allowed")
	}
	if !l.Allow(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("another address refused")
	}
	// Memory stays bounded.
	small := NewRateLimiter(1, 1, 64*16)
	for i := range 100_000 {
		small.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	total := 0
	for i := range small.shards {
		total += len(small.shards[i].m)
	}
	if total > 64*16 {
		t.Fatalf("rate limiter holds %d addresses, bound %d", total, 64*16)
	}
}

func TestParseEvent(t *testing.T) {
	for in, want := range map[string]swarm.Event{"": swarm.None, "started": swarm.Started, "completed": swarm.Completed, "stopped": swarm.Stopped, "paused": swarm.None} {
		if got, err := ParseEvent([]byte(in)); err != nil || got != want {
			t.Errorf("ParseEvent(%q) = %v, %v", in, got, err)
		}
	}
	_, err := ParseEvent([]byte("bogus"))
	var ce *ClientError
	if !errors.As(err, &ce) || ce.Code != CodeBadEvent {
		t.Errorf("bogus event: %v", err)
	}
}
