package wsrelay

import (
	"context"
	"fmt"
	"net"
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
	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/wsapi"
)

// instance is one tracker's WebSocket frontend with its relay, served on loopback.
type instance struct {
	relay *Relay
	reg   *prometheus.Registry
	url   string
}

func newInstance(t *testing.T, rdb redis.UniversalClient, now func() time.Time) *instance {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(rdb, Options{Prefix: "t:", Registerer: reg, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := wsapi.New(wsapi.Config{Relay: r, Registerer: reg, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.ServeWebSocket(w, req, netip.MustParseAddr("127.0.0.1"))
	}))
	t.Cleanup(func() {
		s.Close()
		r.Close()
		hs.Close()
	})
	// Offers published before Redis confirms the instance's subscription would be lost.
	testenv.WaitFor(t, 10*time.Second, "the instance's relay channel subscribed", func() error {
		if !r.subscribed.Load() {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	return &instance{relay: r, reg: reg, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/announce"}
}

// metric returns the value of the series name{labels} in reg (0 when absent).
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recv() map[string]any {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := c.ws.ReadJSON(&m); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// recvWith reads messages until one has field key (announce replies skipped), bounded.
func (c *client) recvWith(key string) map[string]any {
	c.t.Helper()
	for range 50 {
		if m := c.recv(); m[key] != nil {
			return m
		}
	}
	c.t.Fatalf("no message with %q", key)
	return nil
}

// bin is a 20-character binary string made from tag (code points above 127 included).
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

func announce(ih, peer string, offerIDs ...string) map[string]any {
	m := map[string]any{"action": "announce", "info_hash": ih, "peer_id": peer, "left": 10, "numwant": len(offerIDs)}
	var offers []map[string]any
	for _, id := range offerIDs {
		offers = append(offers, map[string]any{"offer_id": id, "offer": map[string]any{"type": "offer", "sdp": "v=0 " + id}})
	}
	if len(offers) > 0 {
		m["offers"] = offers
	}
	return m
}

func answer(ih, peer, to, offerID string) map[string]any {
	return map[string]any{"action": "announce", "info_hash": ih, "peer_id": peer, "to_peer_id": to,
		"offer_id": offerID, "answer": map[string]any{"type": "answer", "sdp": "v=0 answer " + peer}}
}

// located waits until peer of swarm ih is in Redis's hash of peer locations.
func located(t *testing.T, rdb redis.UniversalClient, ih, peer string) {
	t.Helper()
	key := "t:ws:{" + fmt.Sprintf("%x", []byte(binString(ih))) + "}"
	testenv.WaitFor(t, 10*time.Second, "the peer's location in Redis", func() error {
		ok, err := rdb.HExists(context.Background(), key, binString(peer)).Result()
		if err == nil && !ok {
			err = fmt.Errorf("not in %s", key)
		}
		return err
	})
}

// binString is the bytes a binary string stands for (one byte per code point).
func binString(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// crossInstance checks that an offer from a peer on b reaches a peer on a, and its answer
// comes back, and that an answer to no offer is dropped.
func crossInstance(t *testing.T, rdb redis.UniversalClient) {
	// B's instance has a clock of its own, to age its offers past OfferTTL.
	var clock atomic.Int64
	clock.Store(time.Now().Unix())
	ia, ib := newInstance(t, rdb, nil), newInstance(t, rdb, func() time.Time { return time.Unix(clock.Load(), 0) })
	ih := bin("swarm-x")
	pa, pb := dial(t, ia.url), dial(t, ib.url)
	pa.send(announce(ih, bin("peer-a")))
	pa.recv()
	located(t, rdb, ih, bin("peer-a"))

	oid := bin("offer-1")
	pb.send(announce(ih, bin("peer-b"), oid))
	if r := pb.recv(); r["interval"] == nil {
		t.Fatalf("B's reply: %v", r)
	}
	off := pa.recvWith("offer")
	if off["peer_id"] != bin("peer-b") || off["offer_id"] != oid || off["info_hash"] != ih {
		t.Fatalf("offer relayed across instances: %v", off)
	}
	pa.send(answer(ih, bin("peer-a"), bin("peer-b"), oid))
	ans := pb.recvWith("answer")
	if ans["peer_id"] != bin("peer-a") || ans["offer_id"] != oid {
		t.Fatalf("answer relayed back: %v", ans)
	}
	if got := metric(t, ib.reg, "webswarm_tracker_ws_relay_messages_total", "direction", "out", "kind", "offer"); got != 1 {
		t.Errorf("B's instance relayed out %v offers, want 1", got)
	}
	if got := metric(t, ib.reg, "webswarm_tracker_ws_relay_messages_total", "direction", "in", "kind", "answer"); got != 1 {
		t.Errorf("B's instance relayed in %v answers, want 1", got)
	}

	// The same answer again: its offer is no longer outstanding at either instance.
	pa.send(answer(ih, bin("peer-a"), bin("peer-b"), oid))
	// An answer forged onto B's instance's channel, for an offer it never relayed.
	forged := &wsapi.RelayMessage{Answer: true, OfferID: [20]byte{9}, Instance: ia.relay.Instance(), SDP: []byte(`{"type":"answer"}`)}
	copy(forged.InfoHash[:], binString(ih))
	copy(forged.From[:], binString(bin("peer-a")))
	copy(forged.To[:], binString(bin("peer-b")))
	if err := rdb.SPublish(context.Background(), channel("t:", ib.relay.Instance()), encode(forged)).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the forged answer dropped", func() error {
		if got := metric(t, ib.reg, "webswarm_tracker_ws_dropped_total", "reason", "unknown_offer"); got != 1 {
			return fmt.Errorf("B's instance dropped %v unknown answers", got)
		}
		if got := metric(t, ia.reg, "webswarm_tracker_ws_dropped_total", "reason", "unknown_offer"); got != 1 {
			return fmt.Errorf("A's instance dropped %v unknown answers", got)
		}
		return nil
	})

	// An offer answered after the offer age (at the offerer's instance): dropped there.
	oid2 := bin("offer-2")
	pb.send(announce(ih, bin("peer-b"), oid2))
	pb.recv()
	pa.recvWith("offer")
	clock.Add(121)
	pa.send(answer(ih, bin("peer-a"), bin("peer-b"), oid2))
	testenv.WaitFor(t, 10*time.Second, "the late answer dropped", func() error {
		if got := metric(t, ib.reg, "webswarm_tracker_ws_dropped_total", "reason", "unknown_offer"); got != 2 {
			return fmt.Errorf("B's instance dropped %v unknown answers, want 2", got)
		}
		return nil
	})
	// Nothing reached B: its next message is the reply to its next request.
	pb.send(map[string]any{"action": "scrape", "info_hash": ih})
	if r := pb.recv(); r["action"] != "scrape" {
		t.Fatalf("B received %v instead of its scrape", r)
	}
}

func TestCrossInstanceRedis(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	crossInstance(t, rdb)
}

func TestCrossInstanceCluster(t *testing.T) {
	addrs := testenv.StartRedisCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs[:3]})
	t.Cleanup(func() { rdb.Close() })
	crossInstance(t, rdb)
}

// TestRedisOutage kills Redis between two instances: peers of one instance still meet,
// and peers across instances meet again once Redis is back on the same port.
func TestRedisOutage(t *testing.T) {
	bin0 := testenv.Require(t, "redis-server", "redis-server")
	port := testenv.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	startRedis := func() *testenv.Proc {
		p := testenv.Start(t, bin0, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--daemonize", "no", "--dir", t.TempDir())
		testenv.WaitFor(t, 10*time.Second, "redis-server answering PING", func() error { return testenv.RedisPing(addr) })
		return p
	}
	srv := startRedis()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ia, ib := newInstance(t, rdb, nil), newInstance(t, rdb, nil)
	ih := bin("swarm-y")
	pa, pb := dial(t, ia.url), dial(t, ib.url)
	pa.send(announce(ih, bin("peer-a")))
	pa.recv()
	located(t, rdb, ih, bin("peer-a"))

	srv.Kill()
	// B's announces fail at Redis: the relay says it is down.
	testenv.WaitFor(t, 10*time.Second, "the relay down", func() error {
		pb.send(announce(ih, bin("peer-b")))
		pb.recv()
		if metric(t, ib.reg, "webswarm_tracker_ws_relay_up") != 0 {
			return fmt.Errorf("still up")
		}
		return nil
	})
	// Local relaying on A's instance is untouched (in a swarm of its own, so that the
	// offers across instances below can only be for peer A).
	local := bin("swarm-local")
	pc, pd := dial(t, ia.url), dial(t, ia.url)
	pd.send(announce(local, bin("peer-d")))
	pd.recv()
	pc.send(announce(local, bin("peer-c"), bin("local-1")))
	pc.recv()
	if off := pd.recvWith("offer"); off["offer_id"] != bin("local-1") {
		t.Fatalf("local offer during the outage: %v", off)
	}
	pd.send(answer(local, bin("peer-d"), bin("peer-c"), bin("local-1")))
	if ans := pc.recvWith("answer"); ans["peer_id"] != bin("peer-d") {
		t.Fatalf("local answer during the outage: %v", ans)
	}
	// Offers from B while down are dropped at once, not queued.
	pb.send(announce(ih, bin("peer-b"), bin("lost-1")))
	pb.recv()
	if got := metric(t, ib.reg, "webswarm_tracker_ws_relay_dropped_total", "reason", "down"); got < 1 {
		t.Fatalf("offers dropped while down: %v", got)
	}

	startRedis() // empty: the peers' locations come back with their next announces
	in0 := metric(t, ia.reg, "webswarm_tracker_ws_relay_messages_total", "direction", "in", "kind", "offer")
	i := 0
	testenv.WaitFor(t, 30*time.Second, "an offer across instances after Redis returned", func() error {
		i++
		pa.send(announce(ih, bin("peer-a")))
		pb.send(announce(ih, bin("peer-b"), bin("again-"+strconv.Itoa(i))))
		return testenv.Poll(time.Second, func() error {
			if metric(t, ia.reg, "webswarm_tracker_ws_relay_messages_total", "direction", "in", "kind", "offer") <= in0 {
				return fmt.Errorf("no offer in")
			}
			return nil
		})
	})
	off := pa.recvWith("offer")
	pa.send(answer(ih, bin("peer-a"), bin("peer-b"), off["offer_id"].(string)))
	if ans := pb.recvWith("answer"); ans["peer_id"] != bin("peer-a") {
		t.Fatalf("answer after Redis returned: %v", ans)
	}
	if got := metric(t, ib.reg, "webswarm_tracker_ws_relay_up"); got != 1 {
		t.Fatalf("relay_up = %v after recovery", got)
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	m := &wsapi.RelayMessage{Instance: "abc", SDP: []byte(`{"type":"offer"}`)}
	good := encode(m)
	if d, err := decode([]byte(good), 1<<10); err != nil || d.Instance != "abc" || string(d.SDP) != string(m.SDP) {
		t.Fatalf("round trip: %v %v", d, err)
	}
	for name, b := range map[string]string{
		"short":     good[:header-1],
		"kind":      "\x07" + good[1:],
		"no sdp":    good[:header+3],
		"not json":  good[:header+3] + "xx",
		"too large": good[:header+3] + "{" + strings.Repeat("x", 2000) + "}",
	} {
		if _, err := decode([]byte(b), 1<<10); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestOffersDrawnFromWholeSwarm: a swarm of 8 peers on instance A besides the announcer and
// 8 on instance B. The announcer's offers go to peers drawn from all 16, not to A's first:
// about half of them cross to B.
func TestOffersDrawnFromWholeSwarm(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	ia, ib := newInstance(t, rdb, nil), newInstance(t, rdb, nil)
	ih := bin("swarm-whole")
	for i := range 8 {
		for _, in := range []*instance{ia, ib} {
			id := bin(fmt.Sprintf("p%d-%s", i, in.relay.Instance()[:4]))
			p := dial(t, in.url)
			p.send(announce(ih, id))
			p.recv()
			located(t, rdb, ih, id)
		}
	}
	me := dial(t, ia.url)
	testenv.WaitFor(t, 10*time.Second, "A's count of the whole swarm", func() error {
		me.send(announce(ih, bin("announcer")))
		me.recv()
		if n, ok := ia.relay.Peers(binHash(ih)); n != 17 || !ok {
			return fmt.Errorf("Peers = %d, %v; want 17", n, ok)
		}
		return nil
	})

	const announces, offers = 30, 4
	ids := make([]string, offers)
	for i := range ids {
		ids[i] = bin(fmt.Sprintf("whole-%d", i))
	}
	for range announces {
		me.send(announce(ih, bin("announcer"), ids...))
		me.recv()
	}
	out := func() float64 {
		return metric(t, ia.reg, "webswarm_tracker_ws_relay_messages_total", "direction", "out", "kind", "offer")
	}
	local := metric(t, ia.reg, "webswarm_tracker_ws_offers_relayed_total")
	testenv.WaitFor(t, 10*time.Second, "every offer relayed, and those for B delivered there", func() error {
		if got := local + out(); got != announces*offers {
			return fmt.Errorf("%v offers relayed here, %v to B: %v of %d", local, out(), got, announces*offers)
		}
		if got := metric(t, ib.reg, "webswarm_tracker_ws_offers_relayed_total"); got != out() {
			return fmt.Errorf("B handed %v offers to its peers, A sent %v", got, out())
		}
		return nil
	})
	// 120 draws from 8 peers here and 8 there: 60 expected at B, 30 and 90 are 6 standard
	// deviations away. Preferring peers here would send none to B.
	if remote := out(); remote < 30 || remote > 90 {
		t.Errorf("%v of %d offers went to peers on the other instance, %v to peers here; want about half", remote, announces*offers, local)
	}
}

// binHash is the info_hash a binary string stands for.
func binHash(s string) (ih bittorrent.InfoHash) {
	copy(ih[:], binString(s))
	return ih
}

// TestLocationWritesBatched: 200 peers' locations queued at once reach Redis in 4 round
// trips with batches of 64, and in 200 with batches of 1 (the relay before batches).
func TestLocationWritesBatched(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	for _, tc := range []struct {
		batch, trips int
	}{{64, 4}, {1, 200}} {
		reg := prometheus.NewRegistry()
		prefix := fmt.Sprintf("b%d:", tc.batch)
		r, err := New(rdb, Options{Prefix: prefix, Batch: tc.batch, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		var swarms [4]bittorrent.InfoHash
		for i := range swarms {
			swarms[i][0] = byte(i + 1)
		}
		for i := range 200 { // queued before the worker starts: it finds them all waiting
			var id bittorrent.PeerID
			copy(id[:], fmt.Sprintf("peer-%015d", i))
			r.Join(swarms[i%4], id)
		}
		r.Start(func(*wsapi.RelayMessage) {})
		testenv.WaitFor(t, 10*time.Second, "the locations in Redis", func() error {
			for _, ih := range swarms {
				if n, err := rdb.HLen(context.Background(), r.swarmKey(&ih)).Result(); err != nil || n != 50 {
					return fmt.Errorf("HLEN = %d, %v; want 50", n, err)
				}
				if n, ok := r.Peers(ih); n != 50 || !ok {
					return fmt.Errorf("Peers = %d, %v; want 50", n, ok)
				}
			}
			return nil
		})
		ops := metric(t, reg, "webswarm_tracker_ws_relay_operations_total")
		trips := metric(t, reg, "webswarm_tracker_ws_relay_round_trips_total")
		t.Logf("batch %d: %v operations in %v round trips", tc.batch, ops, trips)
		if ops != 200 || trips != float64(tc.trips) {
			t.Errorf("batch %d: %v operations in %v round trips, want 200 in %d", tc.batch, ops, trips, tc.trips)
		}
	}
}

// TestPeersBounded: the relay remembers the peer counts of at most MaxSwarms swarms, and
// forgets a swarm whose count falls to 0.
func TestPeersBounded(t *testing.T) {
	r, err := New(nil, Options{MaxSwarms: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ih bittorrent.InfoHash
	for i := range 10 {
		ih[0] = byte(i)
		r.counted(ih, i+1)
		if n, ok := r.Peers(ih); n != i+1 || !ok {
			t.Fatalf("swarm %d: Peers = %d, %v", i, n, ok)
		}
		if len(r.size) > 3 {
			t.Fatalf("%d swarms remembered, MaxSwarms 3", len(r.size))
		}
	}
	r.counted(ih, 0)
	if _, ok := r.Peers(ih); ok {
		t.Fatal("a swarm with no peers is still remembered")
	}
}

// BenchmarkJoins: peers' location writes through the relay to a real redis-server, with
// batches of one operation (a round trip each, as before batches) and of the default size,
// fed from 8 goroutines as announces would. It reports the round trips an operation.
func BenchmarkJoins(b *testing.B) {
	addr := testenv.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { rdb.Close() })
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			r, err := New(rdb, Options{Prefix: fmt.Sprintf("bench%d:", batch), Batch: batch, Queue: 1 << 16, Registerer: reg})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			r.Start(func(*wsapi.RelayMessage) {})
			var next atomic.Int64
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ih bittorrent.InfoHash
				var id bittorrent.PeerID
				for pb.Next() {
					n := next.Add(1)
					ih[0], ih[1] = byte(n), byte(n>>8)
					copy(id[:], strconv.FormatInt(n, 10))
					for len(r.q) == cap(r.q) { // a full queue drops: wait, to count every write
						time.Sleep(50 * time.Microsecond)
					}
					r.Join(ih, id)
				}
			})
			done := func() float64 {
				return metric(b, reg, "webswarm_tracker_ws_relay_operations_total") +
					metric(b, reg, "webswarm_tracker_ws_relay_dropped_total", "reason", dropQueueFull)
			}
			for float64(next.Load()) != done() {
				time.Sleep(100 * time.Microsecond)
			}
			r.Close() // waits for the last batch
			b.StopTimer()
			ops := metric(b, reg, "webswarm_tracker_ws_relay_operations_total")
			b.ReportMetric(metric(b, reg, "webswarm_tracker_ws_relay_round_trips_total")/ops, "round-trips/op")
		})
	}
}
