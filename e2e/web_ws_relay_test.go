package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// TestWebSocketRelayAcrossInstances: two tracker processes on one real redis-server; a
// WebSocket peer connected to each (a direct ws:// URL pins it to its instance). An offer
// from the peer on B reaches the peer on A and its answer comes back to B, through Redis;
// a flood of offers and answers to nobody's offers from B stays bounded and is counted.
func TestWebSocketRelayAcrossInstances(t *testing.T) {
	store := "redis://" + testenv.StartRedis(t)
	a := startTracker(t, "--store", store, "--store_prefix", "e2e:")
	b := startTracker(t, "--store", store, "--store_prefix", "e2e:", "--ws_max_pending_offers", "20")
	wsURL := func(tp *trackerProc) string { return "ws" + strings.TrimPrefix(tp.Announce, "http") }
	ih := wsBin("relay-swarm")
	pa, pb := mustDial(t, wsURL(a), "127.0.0.1"), mustDial(t, wsURL(b), "127.0.0.1")
	pa.send(wsAnnounce(ih, wsBin("peer-a"), 0))
	pa.recv()

	// A's peer is known to B once A has written where it is: offer until one arrives at A.
	offer := func(id string) map[string]any {
		return map[string]any{"offer_id": id, "offer": map[string]any{"type": "offer", "sdp": "v=0 " + id}}
	}
	in := `webswarm_tracker_ws_relay_messages_total{direction="in",kind="offer"}`
	i := 0
	testenv.WaitFor(t, 20*time.Second, "an offer from B's peer relayed in at A", func() error {
		i++
		pb.send(wsAnnounce(ih, wsBin("peer-b"), 100, offer(wsBin("o"+strconv.Itoa(i)))))
		if r := pb.recv(); r["interval"] == nil {
			return fmt.Errorf("B's reply: %v", r)
		}
		return testenv.Poll(time.Second, func() error {
			if v := metricValue(t, a, in); v < 1 {
				return fmt.Errorf("%s = %v", in, v)
			}
			return nil
		})
	})
	var off map[string]any
	for off = pa.recv(); off["offer"] == nil; off = pa.recv() {
	}
	if off["peer_id"] != wsBin("peer-b") || off["info_hash"] != ih {
		t.Fatalf("offer at A: %v", off)
	}
	pa.send(map[string]any{"action": "announce", "info_hash": ih, "peer_id": wsBin("peer-a"), "to_peer_id": wsBin("peer-b"),
		"offer_id": off["offer_id"], "answer": map[string]any{"type": "answer", "sdp": "v=0 answer"}})
	var ans map[string]any
	for ans = pb.recv(); ans["answer"] == nil; ans = pb.recv() {
	}
	if ans["peer_id"] != wsBin("peer-a") || ans["offer_id"] != off["offer_id"] {
		t.Fatalf("answer at B: %v", ans)
	}
	if v := metricValue(t, b, `webswarm_tracker_ws_relay_messages_total{direction="in",kind="answer"}`); v != 1 {
		t.Errorf("answers relayed in at B: %v, want 1", v)
	}

	// Hostile: answers to offers nobody relayed, sent at A, never leave A; 10-offer
	// announces from B beyond its 20 pending offers are not relayed.
	for j := range 5 {
		pa.send(map[string]any{"action": "announce", "info_hash": ih, "peer_id": wsBin("peer-a"), "to_peer_id": wsBin("peer-b"),
			"offer_id": wsBin("nobody" + strconv.Itoa(j)), "answer": map[string]any{"type": "answer", "sdp": "x"}})
	}
	for j := range 5 {
		offers := make([]map[string]any, 10)
		for k := range offers {
			offers[k] = offer(wsBin(fmt.Sprintf("f%d-%d", j, k)))
		}
		pb.send(wsAnnounce(ih, wsBin("peer-b"), 100, offers...))
	}
	testenv.WaitFor(t, 20*time.Second, "the flood counted", func() error {
		if v := metricValue(t, a, `webswarm_tracker_ws_dropped_total{reason="unknown_offer"}`); v != 5 {
			return fmt.Errorf("unknown answers dropped at A: %v, want 5", v)
		}
		if v := metricValue(t, b, `webswarm_tracker_ws_dropped_total{reason="pending_full"}`); v < 30 {
			return fmt.Errorf("offers over the pending limit at B: %v, want at least 30", v)
		}
		return nil
	})
	if v := metricValue(t, b, `webswarm_tracker_ws_relay_messages_total{direction="in",kind="answer"}`); v != 1 {
		t.Errorf("answers relayed in at B after the flood: %v, want 1", v)
	}
	if v := metricValue(t, b, `webswarm_tracker_ws_relay_up`); v != 1 {
		t.Errorf("webswarm_tracker_ws_relay_up at B: %v", v)
	}
}
