package httpapi

import (
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// withPeerIDs returns a Config change that serves with a tracker handing out peer IDs
// (--peer_ids 1).
func withPeerIDs(t *testing.T) func(*Config) {
	st, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := announce.New(announce.Config{PeerIDs: true}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(); st.Close() })
	return func(c *Config) { c.Tracker = tr }
}

// TestNoPeerIDsByDefault: a compact=0 reply lists addresses only unless the tracker is told
// to give peer IDs: a peer ID is what an attacker needs to act on a peer.
func TestNoPeerIDsByDefault(t *testing.T) {
	h := newHandler(t, nil)
	ih := []byte("01234567890123456789")
	get(t, h, "10.0.0.1:4000", ann(ih, []byte("-LT2080-bbbbbbbbbbbb"), 7001, "5"), nil)
	rep := get(t, h, "10.0.0.2:4000", ann(ih, []byte("-LT2080-cccccccccccc"), 7002, "5&compact=0"), nil)
	var list []map[string]any
	if err := bencode.Unmarshal(rep.Peers, &list); err != nil || len(list) != 1 {
		t.Fatalf("dict peers: %d, %v (%q)", len(list), err, rep.Failure)
	}
	if _, ok := list[0]["peer id"]; ok || list[0]["ip"] != "10.0.0.1" || list[0]["port"] != int64(7001) {
		t.Fatalf("compact=0 peer %v: want ip and port, no peer id", list[0])
	}
}
