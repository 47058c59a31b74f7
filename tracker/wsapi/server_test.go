package wsapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// newTestServer serves s on a loopback HTTP server; every client is 127.0.0.1 unless the
// request carries X-Test-Client.
func newTestServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := netip.MustParseAddr("127.0.0.1")
		if v := r.Header.Get("X-Test-Client"); v != "" {
			client = netip.MustParseAddr(v)
		}
		s.ServeWebSocket(w, r, client)
	}))
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http") + "/announce"
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url string, hdr http.Header) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) sendJSON(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one message, bounded in time.
func (c *client) recv() map[string]any {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := c.ws.ReadJSON(&m); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// bin is a 20-character binary string of code points 0–255 made from tag, including
// code points above 127 (which JavaScript sends as two UTF-8 bytes).
func bin(tag string) string {
	var r [20]rune
	for i := range r {
		r[i] = rune(0xe0 + i)
	}
	for i, c := range []byte(tag) {
		r[i] = rune(c)
	}
	return string(r[:])
}

func announce(ih, peer string, left int, offers ...map[string]any) map[string]any {
	m := map[string]any{"action": "announce", "info_hash": ih, "peer_id": peer, "left": left, "numwant": len(offers), "uploaded": 0, "downloaded": 0}
	if len(offers) > 0 {
		m["offers"] = offers
	}
	return m
}

func sdpOffer(id string) map[string]any {
	return map[string]any{"offer_id": id, "offer": map[string]any{"type": "offer", "sdp": "v=0 " + id}}
}

func TestOfferAnswerRelay(t *testing.T) {
	s, url := newTestServer(t, Config{})
	ih := bin("torrent-1")
	a, b := dial(t, url, nil), dial(t, url, nil)

	a.sendJSON(announce(ih, bin("peer-a"), 0))
	r := a.recv()
	if r["action"] != "announce" || r["info_hash"] != ih || r["complete"] != 1.0 || r["incomplete"] != 0.0 || r["interval"] != 120.0 {
		t.Fatalf("A's reply: %v", r)
	}
	oid := bin("offer-1")
	b.sendJSON(announce(ih, bin("peer-b"), 100, sdpOffer(oid)))
	if r := b.recv(); r["complete"] != 1.0 || r["incomplete"] != 1.0 {
		t.Fatalf("B's reply: %v", r)
	}
	off := a.recv()
	if off["peer_id"] != bin("peer-b") || off["offer_id"] != oid || off["info_hash"] != ih {
		t.Fatalf("relayed offer: %v", off)
	}
	if sdp := off["offer"].(map[string]any)["sdp"]; sdp != "v=0 "+oid {
		t.Fatalf("offer sdp: %q", sdp)
	}
	a.sendJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": bin("peer-a"), "to_peer_id": bin("peer-b"),
		"offer_id": oid, "answer": map[string]any{"type": "answer", "sdp": "v=0 answer"}})
	ans := b.recv()
	if ans["peer_id"] != bin("peer-a") || ans["offer_id"] != oid || ans["answer"].(map[string]any)["sdp"] != "v=0 answer" {
		t.Fatalf("relayed answer: %v", ans)
	}
	// The same answer again answers nothing: the offer is used up.
	a.sendJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": bin("peer-a"), "to_peer_id": bin("peer-b"),
		"offer_id": oid, "answer": map[string]any{"type": "answer", "sdp": "again"}})
	a.sendJSON(map[string]any{"action": "scrape", "info_hash": ih})
	a.recv() // A's scrape reply: A's answer has been handled
	b.sendJSON(map[string]any{"action": "scrape", "info_hash": ih})
	if r := b.recv(); r["action"] != "scrape" {
		t.Fatalf("B got %v before its scrape reply: a used-up offer was answered", r)
	}
	if got := testutil.ToFloat64(s.m.answers); got != 1 {
		t.Fatalf("answers relayed = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.dropped.WithLabelValues(dropUnknown)); got != 1 {
		t.Fatalf("dropped unknown = %v, want 1", got)
	}
}

// An answer is relayed only from the peer the offer went to, naming the offerer.
func TestAnswerOnlyToOutstandingOffer(t *testing.T) {
	s, url := newTestServer(t, Config{})
	ih := bin("torrent-2")
	a, b, c := dial(t, url, nil), dial(t, url, nil), dial(t, url, nil)
	a.sendJSON(announce(ih, bin("peer-a"), 0))
	a.recv()
	oid := bin("offer-2")
	b.sendJSON(announce(ih, bin("peer-b"), 5, sdpOffer(oid)))
	b.recv()
	a.recv() // the offer reached A (C was not in the swarm yet)
	c.sendJSON(announce(ih, bin("peer-c"), 5))
	c.recv()
	answer := func(from *client, peer, to, offer string) {
		from.sendJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": peer, "to_peer_id": to,
			"offer_id": offer, "answer": map[string]any{"type": "answer", "sdp": "x"}})
	}
	answer(c, bin("peer-c"), bin("peer-b"), oid)       // C was not offered it
	answer(c, bin("peer-a"), bin("peer-b"), oid)       // C claiming A's peer_id
	answer(a, bin("peer-a"), bin("peer-c"), oid)       // names the wrong offerer
	answer(a, bin("peer-a"), bin("peer-b"), bin("no")) // no such offer
	answer(c, bin("peer-c"), bin("peer-b"), bin("no")) // nobody's offer
	for _, x := range []*client{a, c} {
		x.sendJSON(map[string]any{"action": "scrape", "info_hash": ih})
		if r := x.recv(); r["action"] != "scrape" {
			t.Fatalf("unexpected %v", r)
		}
	}
	b.sendJSON(map[string]any{"action": "scrape", "info_hash": []string{ih}})
	if r := b.recv(); r["action"] != "scrape" {
		t.Fatalf("B received %v: an answer that was not for its outstanding offer", r)
	}
	if got := testutil.ToFloat64(s.m.dropped.WithLabelValues(dropUnknown)); got != 5 {
		t.Fatalf("dropped = %v, want 5", got)
	}
	answer(a, bin("peer-a"), bin("peer-b"), oid)
	if r := b.recv(); r["answer"] == nil || r["peer_id"] != bin("peer-a") {
		t.Fatalf("the true answer: %v", r)
	}
}

func TestScrapeAndLeave(t *testing.T) {
	s, url := newTestServer(t, Config{})
	ih1, ih2, unknown := bin("t1"), bin("t2"), bin("t3")
	a, b := dial(t, url, nil), dial(t, url, nil)
	a.sendJSON(announce(ih1, bin("a"), 0))
	a.recv()
	a.sendJSON(announce(ih2, bin("a"), 10))
	a.recv()
	b.sendJSON(announce(ih1, bin("b"), 10))
	b.recv()
	scrape := func(hashes any) map[string]any {
		b.sendJSON(map[string]any{"action": "scrape", "info_hash": hashes})
		r := b.recv()
		if r["action"] != "scrape" {
			t.Fatalf("scrape reply: %v", r)
		}
		return r["files"].(map[string]any)
	}
	f := scrape([]string{ih1, ih2, unknown})
	want := map[string][2]float64{ih1: {1, 1}, ih2: {0, 1}, unknown: {0, 0}}
	for ih, w := range want {
		e := f[ih].(map[string]any)
		if e["complete"] != w[0] || e["incomplete"] != w[1] {
			t.Errorf("scrape %q: %v, want %v", ih, e, w)
		}
	}
	if _, se, le := s.Totals(); se != 1 || le != 2 {
		t.Fatalf("totals seeders %d leechers %d", se, le)
	}
	// stopped removes the peer from that torrent only.
	b.sendJSON(map[string]any{"action": "announce", "info_hash": ih1, "peer_id": bin("b"), "event": "stopped", "left": 10})
	if r := b.recv(); r["complete"] != 1.0 || r["incomplete"] != 0.0 {
		t.Fatalf("reply to stopped: %v", r)
	}
	// A closed socket removes its peers at once.
	a.ws.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, se, le := s.Totals(); n == 0 && se == 0 && le == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("peers of a closed socket are still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f = scrape(ih1)
	if e := f[ih1].(map[string]any); e["complete"] != 0.0 || e["incomplete"] != 0.0 {
		t.Fatalf("after close: %v", e)
	}
}

func TestHostileInput(t *testing.T) {
	cases := []struct {
		name   string
		send   func(c *client)
		reason string // rejected_total label
		text   string // part of the failure reason
	}{
		{"bad JSON", func(c *client) { c.ws.WriteMessage(websocket.TextMessage, []byte("{nope")) }, rejBadJSON, "malformed"},
		{"JSON array", func(c *client) { c.ws.WriteMessage(websocket.TextMessage, []byte("[1,2]")) }, rejBadJSON, "malformed"},
		{"unknown action", func(c *client) { c.sendJSON(map[string]any{"action": "hello"}) }, rejBadAction, "action"},
		{"binary frame", func(c *client) { c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"action":"announce"}`)) }, rejBinary, "binary"},
		{"short info_hash", func(c *client) { c.sendJSON(announce("abc", bin("p"), 0)) }, rejBadField, "info_hash"},
		{"code point over 255", func(c *client) { c.sendJSON(announce(strings.Repeat("é", 19)+"Ā", bin("p"), 0)) }, rejBadField, "info_hash"},
		{"numeric peer_id", func(c *client) { c.sendJSON(map[string]any{"action": "announce", "info_hash": bin("x"), "peer_id": 7}) }, rejBadJSON, "malformed"},
		{"offer not an object", func(c *client) {
			c.sendJSON(announce(bin("x"), bin("p"), 0, map[string]any{"offer_id": bin("o"), "offer": "sdp"}))
		}, rejBadField, "offer"},
		{"too many offers", func(c *client) {
			offers := make([]map[string]any, 11)
			for i := range offers {
				offers[i] = sdpOffer(bin(string(rune('a' + i))))
			}
			c.sendJSON(announce(bin("x"), bin("p"), 0, offers...))
		}, rejOffers, "too many offers"},
		{"scrape without hash", func(c *client) { c.sendJSON(map[string]any{"action": "scrape"}) }, rejBadField, "info_hash"},
		{"scrape of too many", func(c *client) {
			c.sendJSON(map[string]any{"action": "scrape", "info_hash": make([]string, 1001)})
		}, rejBadField, "between"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTestServer(t, Config{MaxBadMessages: 3})
			ih := bin("good")
			good := dial(t, url, nil)
			good.sendJSON(announce(ih, bin("good"), 0))
			good.recv()
			bad := dial(t, url, nil)
			for i := 0; i < 3; i++ {
				tc.send(bad)
				r := bad.recv()
				fr, _ := r["failure reason"].(string)
				if !strings.Contains(fr, tc.text) {
					t.Fatalf("reply %d: %v, want a failure reason with %q", i, r, tc.text)
				}
			}
			// The third bad message closes the connection: policy violation.
			bad.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, err := bad.ws.ReadMessage()
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Fatalf("after 3 bad messages: %v, want close 1008", err)
			}
			if got := testutil.ToFloat64(s.m.rejected.WithLabelValues(tc.reason)); got != 3 {
				t.Fatalf("rejected{%s} = %v, want 3", tc.reason, got)
			}
			// The other peer is served as before.
			good.sendJSON(map[string]any{"action": "scrape", "info_hash": ih})
			if r := good.recv(); r["files"].(map[string]any)[ih].(map[string]any)["complete"] != 1.0 {
				t.Fatalf("good peer's scrape: %v", r)
			}
		})
	}
}

func TestMessageTooLarge(t *testing.T) {
	s, url := newTestServer(t, Config{MaxMessage: 1024})
	c := dial(t, url, nil)
	c.ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"scrape","x":"`+strings.Repeat("a", 2000)+`"}`))
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("got %v, want close 1009", err)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(s.m.closed.WithLabelValues(closedTooLarge)) == 1 })
}

func TestConnectionLimits(t *testing.T) {
	s, url := newTestServer(t, Config{MaxConnsPerIP: 2, MaxConns: 3})
	hdr := func(ip string) http.Header { return http.Header{"X-Test-Client": {ip}} }
	dial(t, url, hdr("192.0.2.1"))
	dial(t, url, hdr("192.0.2.1"))
	if _, resp, err := websocket.DefaultDialer.Dial(url, hdr("192.0.2.1")); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection from one IP: %v %v, want 429", err, resp)
	}
	// An IPv6 /64 is one client.
	dial(t, url, hdr("2001:db8::1"))
	if _, resp, err := websocket.DefaultDialer.Dial(url, hdr("2001:db8::2")); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fourth connection: %v %v, want 503 (total cap)", err, resp)
	}
	if got := testutil.ToFloat64(s.m.refused.WithLabelValues(refusedIP)); got != 1 {
		t.Fatalf("refused{ip} = %v", got)
	}
	if got := testutil.ToFloat64(s.m.refused.WithLabelValues(refusedTotal)); got != 1 {
		t.Fatalf("refused{total} = %v", got)
	}
}

func TestLimitsOnSwarms(t *testing.T) {

	s, url := newTestServer(t, Config{MaxPeers: 1, MaxSwarms: 1, Allowed: func(ih bittorrent.InfoHash) bool { return string(ih[:1]) == "a" }})
	a, b := dial(t, url, nil), dial(t, url, nil)
	a.sendJSON(announce(bin("zzz"), bin("a"), 0))
	if r := a.recv(); r["failure reason"] != notAuthorized {
		t.Fatalf("not allowed: %v", r)
	}

	a.sendJSON(announce(bin("a1"), bin("a"), 0))
	if r := a.recv(); r["complete"] != 1.0 {
		t.Fatalf("allowed: %v", r)
	}
	a.sendJSON(announce(bin("a2"), bin("a"), 0))
	if r := a.recv(); !strings.Contains(r["failure reason"].(string), "too many torrents") {
		t.Fatalf("second swarm: %v", r)
	}
	b.sendJSON(announce(bin("a1"), bin("b"), 0))
	if r := b.recv(); !strings.Contains(r["failure reason"].(string), "torrent is full") {
		t.Fatalf("full torrent: %v", r)
	}
	b.sendJSON(announce(bin("a1"), bin("a"), 0))
	if r := b.recv(); !strings.Contains(r["failure reason"].(string), "peer_id is in use") {
		t.Fatalf("taken peer_id: %v", r)
	}
	if got := testutil.ToFloat64(s.m.rejected.WithLabelValues(rejTorrentFull)); got != 1 {
		t.Fatalf("torrent_full = %v", got)
	}
}

// Offers over MaxPendingOffers are not relayed, and the announcer still gets its reply.
func TestPendingOffersBounded(t *testing.T) {
	s, url := newTestServer(t, Config{MaxPendingOffers: 3})
	ih := bin("pending")
	a, b := dial(t, url, nil), dial(t, url, nil)
	a.sendJSON(announce(ih, bin("a"), 0))
	a.recv()
	for i := 0; i < 5; i++ {
		b.sendJSON(announce(ih, bin("b"), 1, sdpOffer(bin(string(rune('0'+i))))))
		b.recv()
	}
	for i := 0; i < 3; i++ {
		if r := a.recv(); r["offer"] == nil {
			t.Fatalf("offer %d: %v", i, r)
		}
	}
	a.sendJSON(map[string]any{"action": "scrape", "info_hash": ih})
	if r := a.recv(); r["action"] != "scrape" {
		t.Fatalf("more than 3 offers pending: %v", r)
	}
	if got := testutil.ToFloat64(s.m.dropped.WithLabelValues(dropPending)); got != 2 {
		t.Fatalf("pending_full = %v", got)
	}
}

// Expired offers are dropped and free their slot; silent peers leave their torrents.
func TestSweep(t *testing.T) {
	var sec atomic.Int64 // the clock, read by the server's goroutines
	sec.Store(1_000_000)
	clock := func() time.Time { return time.Unix(sec.Load(), 0) }
	s, url := newTestServer(t, Config{Now: clock, OfferTTL: 10 * time.Second, PeerTimeout: 100 * time.Second, PingInterval: time.Hour, IdleTimeout: 2 * time.Hour})
	ih := bin("sweep")
	a, b := dial(t, url, nil), dial(t, url, nil)
	a.sendJSON(announce(ih, bin("a"), 0))
	a.recv()
	oid := bin("o")
	b.sendJSON(announce(ih, bin("b"), 1, sdpOffer(oid)))
	b.recv()
	a.recv()
	s.sweep(sec.Add(11))
	if got := testutil.ToFloat64(s.m.dropped.WithLabelValues(dropExpired)); got != 1 {
		t.Fatalf("expired = %v", got)
	}
	a.sendJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": bin("a"), "to_peer_id": bin("b"), "offer_id": oid, "answer": map[string]any{"type": "answer"}})
	b.sendJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": bin("b"), "left": 1})
	b.recv()
	s.sweep(sec.Add(95)) // B announced 95 s ago, A 106 s ago
	c, ok := s.Counts(bittorrentHash(ih))
	if !ok || c.Complete != 0 || c.Incomplete != 1 {
		t.Fatalf("after sweep: %+v %v, want only B", c, ok)
	}
}

func bittorrentHash(s string) [20]byte {
	raw, _ := json.Marshal(s)
	b, err := binary20(raw, "x")
	if err != nil {
		panic(err)
	}
	return b
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Binary strings keep every byte through JSON, whatever the client escapes.
func TestBinaryStrings(t *testing.T) {
	var all [256]byte
	for i := range all {
		all[i] = byte(i)
	}
	for off := 0; off < 256; off += 20 {
		var b [20]byte
		for i := range b {
			b[i] = all[(off+i)%256]
		}
		enc := appendBinary(nil, b[:])
		var s string
		if err := json.Unmarshal(enc, &s); err != nil {
			t.Fatalf("%q: %v", enc, err)
		}
		again, _ := json.Marshal(s) // escaped as encoding/json escapes
		for _, raw := range [][]byte{enc, again} {
			got, err := binary20(raw, "x")
			if err != nil || got != b {
				t.Fatalf("round trip of %x through %q: %x %v", b, raw, got, err)
			}
		}
	}
}

// TestManyTorrentsOneSocket: one socket (an agent) seeds 40 torrents under one peer_id.
// A leecher's offer in any of them reaches it naming that torrent, and its answer goes back;
// "stopped" takes it out of that torrent only; closing the socket takes it out of all.
func TestManyTorrentsOneSocket(t *testing.T) {
	const n = 40
	s, url := newTestServer(t, Config{})
	agent, leecher := dial(t, url, nil), dial(t, url, nil)
	ihs := make([]string, n)
	for i := range ihs {
		ihs[i] = bin("many-" + strconv.Itoa(i))
		agent.sendJSON(announce(ihs[i], bin("agent"), 0))
		if r := agent.recv(); r["info_hash"] != ihs[i] || r["complete"] != 1.0 {
			t.Fatalf("reply to torrent %d: %v", i, r)
		}
	}
	if torrents, seeders, _ := s.Totals(); torrents != n || seeders != n {
		t.Fatalf("%d torrents, %d seeders; want %d of each", torrents, seeders, n)
	}
	for _, i := range []int{3, 27} {
		oid := bin("offer-" + strconv.Itoa(i))
		leecher.sendJSON(announce(ihs[i], bin("leecher"), 100, sdpOffer(oid)))
		leecher.recv()
		off := agent.recv()
		if off["info_hash"] != ihs[i] || off["offer_id"] != oid || off["peer_id"] != bin("leecher") {
			t.Fatalf("offer in torrent %d reached the agent as %v", i, off)
		}
		agent.sendJSON(map[string]any{"action": "announce", "info_hash": ihs[i], "peer_id": bin("agent"), "to_peer_id": bin("leecher"),
			"offer_id": oid, "answer": map[string]any{"type": "answer", "sdp": "v=0 " + strconv.Itoa(i)}})
		ans := leecher.recv()
		if ans["info_hash"] != ihs[i] || ans["offer_id"] != oid || ans["answer"].(map[string]any)["sdp"] != "v=0 "+strconv.Itoa(i) {
			t.Fatalf("answer in torrent %d: %v", i, ans)
		}
	}
	agent.sendJSON(map[string]any{"action": "announce", "info_hash": ihs[5], "peer_id": bin("agent"), "event": "stopped", "left": 0})
	if r := agent.recv(); r["info_hash"] != ihs[5] || r["complete"] != 0.0 {
		t.Fatalf("reply to stopped: %v", r)
	}
	for i, want := range map[int]uint32{5: 0, 6: 1, 27: 1} {
		if c, _ := s.Counts(bittorrentHash(ihs[i])); c.Complete != want {
			t.Errorf("torrent %d after stopping torrent 5: %d seeders, want %d", i, c.Complete, want)
		}
	}
	agent.ws.Close()
	waitFor(t, func() bool {
		_, seeders, leechers := s.Totals()
		return seeders == 0 && leechers == 2
	})
	for i := range ihs {
		if c, _ := s.Counts(bittorrentHash(ihs[i])); c.Complete != 0 {
			t.Fatalf("torrent %d keeps the closed socket's seeder", i)
		}
	}
}
