package announcer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/udpapi"
)

// udpCase starts the real tracker, a relay in front of its UDP socket and an announcer
// (not running) that announces through the relay.
func udpCase(t *testing.T, mangle func(int, []byte) [][]byte) (*realTracker, *udpRelay, *Announcer) {
	t.Helper()
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour, MinInterval: time.Second})
	r := startRelay(t, rt.udpAddr, mangle)
	a := mustNew(t, testConfig([][]string{{r.URL()}}, hash(t.Name()), 1))
	return rt, r, a
}

func udpAnnounceOnce(t *testing.T, a *Announcer) (*reply, error) {
	t.Helper()
	tr := a.tiers[0][0]
	r := a.newRequest(tr, false, a.cfg.Progress())
	return a.announceTo(t.Context(), tr, r)
}

// A lost reply is retransmitted for (BEP 15), on the configured schedule.
func TestUDPLostReply(t *testing.T) {
	_, r, a := udpCase(t, func(i int, p []byte) [][]byte {
		if i == 0 {
			return [][]byte{{}} // drop the first reply (to the connect)
		}
		return nil
	})
	defer a.closeUDP()
	if _, err := udpAnnounceOnce(t, a); err != nil {
		t.Fatal(err)
	}
	if c, an := r.count(bittorrent.UDPConnect), r.count(bittorrent.UDPAnnounce); c != 2 || an != 1 {
		t.Errorf("relay saw %d connects and %d announces, want 2 and 1", c, an)
	}
}

// A reply with another transaction ID is ignored; the genuine one that follows is taken.
func TestUDPWrongTransactionID(t *testing.T) {
	_, r, a := udpCase(t, func(i int, p []byte) [][]byte {
		forged := append([]byte(nil), p...)
		binary.BigEndian.PutUint32(forged[4:], binary.BigEndian.Uint32(p[4:])+1)
		if i == 1 {
			// A forged announce reply claiming a peer.
			forged = append(forged[:20], 6, 6, 6, 6, 0, 6)
		}
		return [][]byte{forged, p}
	})
	defer a.closeUDP()
	rep, err := udpAnnounceOnce(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.peers) != 0 {
		t.Errorf("peers %v from a forged reply", rep.peers)
	}
	if c := r.count(bittorrent.UDPConnect); c != 1 {
		t.Errorf("%d connects, want 1 (no retransmission needed)", c)
	}
}

// Only forged replies: the announce gives up after the configured retransmissions.
func TestUDPNoReply(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour, MinInterval: time.Second})
	r := startRelay(t, rt.udpAddr, func(i int, p []byte) [][]byte {
		binary.BigEndian.PutUint32(p[4:], ^binary.BigEndian.Uint32(p[4:]))
		return [][]byte{p}
	})
	cfg := testConfig([][]string{{r.URL()}}, hash(t.Name()), 1)
	cfg.UDPTimeout = 100 * time.Millisecond // no reply ever comes: only the count matters
	a := mustNew(t, cfg)
	defer a.closeUDP()
	_, err := udpAnnounceOnce(t, a)
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err %v, want ErrNoReply", err)
	}
	if c := r.count(bittorrent.UDPConnect); c != a.cfg.UDPRetries+1 {
		t.Errorf("%d connects sent, want %d", c, a.cfg.UDPRetries+1)
	}
}

// The connection ID is reused within its minute, and fetched again once it is older.
func TestUDPConnectionIDCached(t *testing.T) {
	_, r, a := udpCase(t, nil)
	defer a.closeUDP()
	for range 2 {
		if _, err := udpAnnounceOnce(t, a); err != nil {
			t.Fatal(err)
		}
	}
	if c, an := r.count(bittorrent.UDPConnect), r.count(bittorrent.UDPAnnounce); c != 1 || an != 2 {
		t.Errorf("%d connects, %d announces; want 1 and 2", c, an)
	}
	u := a.tiers[0][0].udp
	u.mu.Lock()
	u.idAt = u.idAt.Add(-connIDLifetime)
	u.mu.Unlock()
	if _, err := udpAnnounceOnce(t, a); err != nil {
		t.Fatal(err)
	}
	if c := r.count(bittorrent.UDPConnect); c != 2 {
		t.Errorf("%d connects after the ID expired, want 2", c)
	}
}

// A tracker that restarted refuses our cached connection ID with an error packet: the
// announcer connects again and the announce succeeds.
func TestUDPStaleConnectionID(t *testing.T) {
	rt, r, a := udpCase(t, nil)
	defer a.closeUDP()
	if _, err := udpAnnounceOnce(t, a); err != nil {
		t.Fatal(err)
	}
	r.setUpstream(serveUDP(t, "127.0.0.1", rt.core, udpapi.Config{})) // another key
	if _, err := udpAnnounceOnce(t, a); err != nil {
		t.Fatalf("announce after the tracker's restart: %v", err)
	}
	if c, an := r.count(bittorrent.UDPConnect), r.count(bittorrent.UDPAnnounce); c != 2 || an != 3 {
		t.Errorf("%d connects, %d announces; want 2 and 3", c, an)
	}
}

func TestUDPMalformedReplies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func(p []byte) []byte
	}{
		{"short announce reply", func(p []byte) []byte { return p[:12] }},
		{"wrong action", func(p []byte) []byte { binary.BigEndian.PutUint32(p, bittorrent.UDPScrape); return p }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, a := udpCase(t, func(i int, p []byte) [][]byte {
				if i == 1 {
					return [][]byte{tc.mangle(p)}
				}
				return nil
			})
			defer a.closeUDP()
			if _, err := udpAnnounceOnce(t, a); !errors.Is(err, ErrBadReply) {
				t.Errorf("err %v, want ErrBadReply", err)
			}
		})
	}
}

// BEP 41: the URL's path and query ride along as URLData options; the tracker accepts them.
func TestUDPURLData(t *testing.T) {
	u, err := url.Parse("udp://t.example:1/announce?passkey=" + strings.Repeat("x", 300))
	if err != nil {
		t.Fatal(err)
	}
	b := appendURLData(nil, u)
	if b[0] != 2 || b[1] != 255 || b[257] != 2 || int(b[258]) != len(b)-259 {
		t.Errorf("URLData options % x...", b[:4])
	}
	if got := appendURLData(nil, &url.URL{Scheme: "udp", Host: "t:1"}); len(got) != 0 {
		t.Errorf("options %q for a bare host", got)
	}
	rt := startTracker(t, "127.0.0.1", announce.Config{})
	a := mustNew(t, testConfig([][]string{{rt.UDP + "/announce?pk=1"}}, hash("bep41"), 1))
	defer a.closeUDP()
	if _, err := udpAnnounceOnce(t, a); err != nil {
		t.Fatal(err)
	}
}

// A UDP tracker that never answers: cancelling the context ends the wait at once.
func TestUDPCancel(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := testConfig([][]string{{"udp://" + pc.LocalAddr().String()}}, hash("cancel"), 1)
	cfg.UDPTimeout = time.Hour
	a := mustNew(t, cfg)
	runAnnouncer(t, a)
	testenv.WaitFor(t, 5*time.Second, "Run started", func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.running {
			return fmt.Errorf("not running")
		}
		return nil
	})
	// Stop cancels Run's pending exchange; the stopped announce to a tracker that never
	// answered is not sent.
	if err := a.Stop(t.Context()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	select {
	case <-a.runDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if a.Status().Failures != 0 {
		t.Errorf("a cancelled exchange counted as a failure: %+v", a.Status())
	}
}

func TestUDPPeerFamily(t *testing.T) {
	four := []byte{10, 0, 0, 1, 0, 1}
	six := append(netip.MustParseAddr("2001:db8::1").AsSlice(), 0, 2)
	if got := appendCompact(nil, four, 4); len(got) != 1 || got[0] != mustAddrPort("10.0.0.1:1") {
		t.Errorf("IPv4 %v", got)
	}
	if got := appendCompact(nil, six, 16); len(got) != 1 || got[0] != mustAddrPort("[2001:db8::1]:2") {
		t.Errorf("IPv6 %v", got)
	}
}
