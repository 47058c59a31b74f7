package wsapi

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkAnnounceRelay is one announce of bench/wsbench's "max" scenario through a real
// loopback connection: 5 offers of 500-byte SDPs relayed to 5 peers, each answering, the
// answers relayed back — 17 messages through the tracker. The clients run in the same process,
// so ns/op and cpu-ns/op (the process's CPU time) count both sides; allocs/op and B/op are
// mostly the tracker's.
func BenchmarkAnnounceRelay(b *testing.B) {
	_, url := newTestServer(b, Config{})
	dialB := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ws.Close() })
		return ws
	}
	ih := bin("bench-torrent")
	sdp := strings.Repeat("a=x\r\n", 100)
	const peers = 5
	for i := range peers {
		ws := dialB()
		id := bin("peer-" + string(rune('a'+i)))
		if err := ws.WriteJSON(announce(ih, id, 10)); err != nil {
			b.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		go func() { // answer every offer relayed to this peer until the connection ends
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var o struct {
					PeerID  string `json:"peer_id"`
					OfferID string `json:"offer_id"`
				}
				if json.Unmarshal(msg, &o) != nil {
					return
				}
				ws.WriteJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": id,
					"to_peer_id": o.PeerID, "offer_id": o.OfferID, "answer": map[string]any{"type": "answer", "sdp": sdp}})
			}
		}()
	}
	offerer := dialB()
	offers := make([]map[string]any, peers)
	for i := range offers {
		offers[i] = map[string]any{"offer_id": bin("offer-" + string(rune('a'+i))), "offer": map[string]any{"type": "offer", "sdp": sdp}}
	}
	msg, err := json.Marshal(announce(ih, bin("offerer"), 10, offers...))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		if err := offerer.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		offerer.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range 1 + peers { // the reply and the answers
			if _, _, err := offerer.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkIdlePeers connects one peer per iteration, each announcing once and then idle
// (bench/wsbench's peers between rounds; run it with -benchtime=2000x), and reports what
// they hold: goroutine stacks (the tracker's alone: the clients have no goroutines) and heap
// in use (clients included, each holding a 256-byte read buffer and its socket).
func BenchmarkIdlePeers(b *testing.B) {
	s, url := newTestServer(b, Config{MaxConnsPerIP: -1, MaxConns: -1})
	dialer := websocket.Dialer{ReadBufferSize: 256, WriteBufferPool: &sync.Pool{}}
	ih := bin("bench-torrent")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	i := 0
	for b.Loop() {
		ws, _, err := dialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ws.Close() })
		if err := ws.WriteJSON(announce(ih, bin(strconv.Itoa(i)), 10)); err != nil {
			b.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	waitFor(b, func() bool { return s.open.Load() == int64(i) })
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(i), "stack-B/peer")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(i), "heap-B/peer")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(i), "goroutines/peer")
}
