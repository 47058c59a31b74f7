package wsapi

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// fakeRelay records what the Server hands to it.
type fakeRelay struct {
	mu      sync.Mutex
	offers  []RelayOffer
	answers []*RelayMessage
}

func (f *fakeRelay) Start(func(*RelayMessage))                    {}
func (f *fakeRelay) Join(bittorrent.InfoHash, bittorrent.PeerID)  {}
func (f *fakeRelay) Leave(bittorrent.InfoHash, bittorrent.PeerID) {}
func (f *fakeRelay) Peers(bittorrent.InfoHash) (int, bool)        { return 0, false }
func (f *fakeRelay) Offer(_ bittorrent.InfoHash, _ bittorrent.PeerID, o []RelayOffer) {
	f.mu.Lock()
	f.offers = append(f.offers, o...)
	f.mu.Unlock()
}
func (f *fakeRelay) Answer(_ string, m *RelayMessage) {
	f.mu.Lock()
	f.answers = append(f.answers, m)
	f.mu.Unlock()
}

func (f *fakeRelay) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.offers), len(f.answers)
}

// TestRelaySeam: offers without a local peer go to the Relay; offers relayed in reach only
// a peer connected here, at most MaxRelayPending at once, and only the target's answer
// goes back.
func TestRelaySeam(t *testing.T) {
	fr := &fakeRelay{}
	s, url := newTestServer(t, Config{Relay: fr, MaxRelayPending: 2})
	ih := bin("relayed")
	a := dial(t, url, nil)
	a.sendJSON(announce(ih, bin("peer-a"), 5, sdpOffer(bin("o1")), sdpOffer(bin("o2"))))
	a.recv()
	if n, _ := fr.counts(); n != 2 {
		t.Fatalf("offers handed to the relay: %d, want 2 (no other peer here)", n)
	}
	msg := func(to, offerID string) *RelayMessage {
		m := &RelayMessage{Instance: "other", SDP: []byte(`{"type":"offer","sdp":"x"}`)}
		m.InfoHash, m.From, m.To, m.OfferID = bittorrentHash(ih), bittorrentHash(bin("remote")), bittorrentHash(to), bittorrentHash(offerID)
		return m
	}
	s.deliver(msg(bin("nobody"), bin("r0")))
	for i, id := range []string{"r1", "r2", "r3"} { // the third is over MaxRelayPending
		s.deliver(msg(bin("peer-a"), bin(id)))
		if i < 2 {
			if off := a.recv(); off["offer_id"] != bin(id) || off["peer_id"] != bin("remote") {
				t.Fatalf("offer relayed in: %v", off)
			}
		}
	}
	if got := testutil.ToFloat64(s.m.dropped.WithLabelValues(dropRelayNoPeer)); got != 1 {
		t.Errorf("relay_no_peer = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.dropped.WithLabelValues(dropRelayFull)); got != 1 {
		t.Errorf("relay_full = %v, want 1", got)
	}
	answer := func(peer, to, offerID string) {
		a.sendJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": peer, "to_peer_id": to,
			"offer_id": offerID, "answer": map[string]any{"type": "answer", "sdp": "y"}})
	}
	answer(bin("peer-a"), bin("someone"), bin("r1")) // names the wrong offerer
	answer(bin("peer-a"), bin("remote"), bin("r1"))
	a.sendJSON(map[string]any{"action": "scrape", "info_hash": ih})
	a.recv() // both answers are handled
	if _, n := fr.counts(); n != 1 || fr.answers[0].From != bittorrentHash(bin("peer-a")) {
		t.Fatalf("answers handed to the relay: %d %+v, want the one for remote's offer", n, fr.answers)
	}
	// r1 answered: room for another offer from the other instance.
	s.deliver(msg(bin("peer-a"), bin("r4")))
	if off := a.recv(); off["offer_id"] != bin("r4") {
		t.Fatalf("offer after an answer freed room: %v", off)
	}
}
