package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/rtc"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// The tests here attack the built seedctl over WebRTC from outside (a hostile WebSocket
// tracker, a data-channel peer that never reads) and check that its many torrents share
// one tracker socket. The test's own WebRTC peers are pion, through seedctl/rtc, on
// 127.0.0.1 inside a private network namespace (inNetns).

// testPeerPrefix begins the peer IDs of the test's WebRTC peers.
const testPeerPrefix = "-WT0001-"

// rtcPeer is the test's WebRTC peer of one torrent, meeting seedctl through the tracker at
// url: it returns the first connection to a peer other than the test's own whose BitTorrent
// handshake (plaintext, as browsers speak it) succeeds, with a reader for its messages.
func rtcPeer(t *testing.T, url, infoHashHex, tag string) (*wire.Conn, *wire.Reader, *wire.Writer) {
	t.Helper()
	var ih bittorrent.InfoHash
	if _, err := hex.Decode(ih[:], []byte(infoHashHex)); err != nil {
		t.Fatalf("info-hash %q: %v", infoHashHex, err)
	}
	var id bittorrent.PeerID
	copy(id[:], testPeerPrefix+tag+strings.Repeat("x", 20))
	tr, err := rtc.NewTransport(rtc.Config{Bind: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	res := wire.Reserved{} // a browser: no Fast, no extension protocol
	got := make(chan *wire.Conn, 1)
	cl, err := rtc.NewClient(rtc.ClientConfig{URL: url, InfoHash: ih, PeerID: id, Transport: tr, Offers: 2, Left: func() int64 { return 1 },
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		HandleConn: func(nc net.Conn, outgoing bool) {
			cfg := &wire.Config{PeerID: id, Reserved: res, Encryption: wire.Off, Known: func(h bittorrent.InfoHash) bool { return h == ih }}
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			var c *wire.Conn
			var err error
			if outgoing {
				c, err = wire.Initiate(nc, cfg, ih)
			} else {
				c, err = wire.Accept(nc, cfg)
			}
			if err != nil {
				nc.Close()
				return
			}
			if bytes.HasPrefix(c.Peer.PeerID[:], []byte(testPeerPrefix)) {
				c.Close() // another of the test's peers, not seedctl
				return
			}
			nc.SetDeadline(time.Time{})
			select {
			case got <- c:
			default:
				c.Close()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case c := <-got:
		t.Cleanup(func() { c.Close() })
		return c, wire.NewReader(c.Reader, c.Limits(res)), wire.NewWriter(c.Writer)
	case <-time.After(90 * time.Second):
		t.Fatalf("peer %s: no WebRTC connection to seedctl through %s in 90 s", tag, url)
		return nil, nil, nil
	}
}

// rtcDownload downloads the whole torrent (payload want, pieces of pieceLen) over c as an
// honest peer: INTERESTED, then every block requested, 32 in flight, and compared.
func rtcDownload(t *testing.T, c *wire.Conn, r *wire.Reader, w *wire.Writer, want []byte, pieceLen int, timeout time.Duration) {
	t.Helper()
	const block = 16 << 10
	type req struct{ index, begin, length uint32 }
	var reqs []req
	for off := 0; off < len(want); off += block {
		n := min(block, len(want)-off)
		reqs = append(reqs, req{uint32(off / pieceLen), uint32(off % pieceLen), uint32(n)})
	}
	got := make([]byte, len(want))
	deadline := time.Now().Add(timeout)
	c.NetConn().SetDeadline(deadline)
	defer c.NetConn().SetDeadline(time.Time{})
	w.Interested()
	if err := w.Flush(); err != nil {
		t.Fatalf("interested: %v", err)
	}
	var m wire.Message
	unchoked := false
	next, received := 0, 0
	for received < len(reqs) {
		if unchoked {
			for ; next < len(reqs) && next-received < 32; next++ {
				w.Request(reqs[next].index, reqs[next].begin, reqs[next].length)
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("requests: %v", err)
			}
		}
		if err := r.Read(&m); err != nil {
			t.Fatalf("download after %d of %d blocks: %v", received, len(reqs), err)
		}
		switch m.ID {
		case wire.Unchoke:
			unchoked = true
		case wire.Choke:
			unchoked, next = false, received // requests are dropped on a choke: ask again
		case wire.Piece:
			off := int(m.Index)*pieceLen + int(m.Begin)
			copy(got[off:], m.Block)
			received++
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes downloaded over WebRTC differ from the file")
	}
}

// metricSum is the sum of a /metrics body's samples of the metric name (every label set).
func metricSum(body []byte, name string) float64 {
	var sum float64
	for line := range strings.Lines(string(body)) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// procFDs is the number of file descriptors process pid has open.
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// rtcSetup builds seedctl and the tracker and runs the test again inside a private network
// namespace; there (ok) it starts the tracker, whose ws:// announce URL is wsURL.
func rtcSetup(t *testing.T) (seedctl string, tr *trackerProc, wsURL string, ok bool) {
	t.Helper()
	seedctl = testenv.Build(t, "./seedctl")
	testenv.Build(t, "./tracker")
	if inNetns(t) {
		return "", nil, "", false
	}
	tr = startTracker(t)
	return seedctl, tr, fmt.Sprintf("ws://127.0.0.1:%d/announce", tr.Port), true
}

// TestAgentManyTorrentsOneSocket: `seedctl agent` seeding 40 torrents that list our
// tracker's ws:// URL — more than the tracker's --ws_max_connections_per_ip (32, its
// default) — announces every one of them, on one WebSocket: the tracker's /stats.json counts
// a WebRTC seeder in each torrent and its /metrics one WebSocket connection. A WebRTC peer of
// one torrent sends its offer and gets the agent's answer through the tracker, and the
// agent's session speaks the peer wire protocol over the data channel.
func TestAgentManyTorrentsOneSocket(t *testing.T) {
	seedctl, tr, wsURL, ok := rtcSetup(t)
	if !ok {
		return
	}
	dir := t.TempDir()
	const n = 40
	ihs := make([]string, n)
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("f%02d.bin", i))
		scWriteFile(t, path, 64<<10)
		ihs[i] = scMake(t, path, "-t", wsURL, "-o", path+".torrent").InfoHash
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
	testenv.Start(t, seedctl, "agent", "--dir", dir, "--state", t.TempDir(), "--bind", "127.0.0.1",
		"--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")), "--webrtc-bind", "127.0.0.1",
		"--metrics", metricsAddr)

	var stats struct {
		Torrents    int                       `json:"torrents"`
		PeersByRole map[string]map[string]int `json:"peers_by_role"`
	}
	testenv.WaitFor(t, 90*time.Second, "every torrent announced to the tracker over WebSocket", func() error {
		body, err := httpGet(tr.Base + "/stats.json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &stats); err != nil {
			return err
		}
		if stats.Torrents != n || stats.PeersByRole["seeder"]["webtorrent"] != n {
			return fmt.Errorf("%d torrents, %d WebRTC seeders; want %d of each", stats.Torrents, stats.PeersByRole["seeder"]["webtorrent"], n)
		}
		return nil
	})
	if v, err := monMetric(tr.Base+"/metrics", "webswarm_tracker_ws_connections"); err != nil || v != 1 {
		t.Errorf("tracker's WebSocket connections = %v (%v), want 1: the agent's torrents share one", v, err)
	}

	c, r, _ := rtcPeer(t, wsURL, ihs[17], "many")
	c.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	var m wire.Message
	if err := r.Read(&m); err != nil || m.ID != wire.BitfieldMsg {
		t.Fatalf("first message from the agent over WebRTC: %v %v, want its BITFIELD", m.ID, err)
	}
	testenv.WaitFor(t, 30*time.Second, "the agent counting the WebRTC connection", func() error {
		body, err := httpGet("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		if v := metricSum(body, "webswarm_seed_webrtc_connections_total"); v < 1 {
			return fmt.Errorf("webswarm_seed_webrtc_connections_total = %v", v)
		}
		return nil
	})
}

// hostileTracker is a WebSocket tracker that answers nothing and, to every socket, sends
// rate offers a second (each with a fresh peer_id and offer_id, the SDP a real pion offer
// whose PeerConnection is gone) for the torrent ih, until stop or limit offers in all.
type hostileTracker struct {
	sent atomic.Int64
	done chan struct{} // closed when limit offers are sent
	once sync.Once
}

// startHostileTrackerOn serves a hostileTracker on 127.0.0.1:port.
func startHostileTrackerOn(t *testing.T, port int, ih bittorrent.InfoHash, sdp rtcSDP, rate, limit int, stop <-chan struct{}) *hostileTracker {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileTracker{done: make(chan struct{})}
	up := websocket.Upgrader{}
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		wg.Add(1)
		go func() { // drain what seedctl sends (announces, answers)
			defer wg.Done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for h.sent.Load() < int64(limit) {
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			for range rate / 100 {
				var pid, oid [20]byte
				rand.Read(pid[:])
				rand.Read(oid[:])
				msg, _ := json.Marshal(map[string]any{"action": "announce", "info_hash": binStr(ih[:]), "peer_id": binStr(pid[:]),
					"offer_id": binStr(oid[:]), "offer": sdp})
				ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
					return
				}
				if h.sent.Add(1) == int64(limit) {
					h.once.Do(func() { close(h.done) })
				}
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return h
}

// rtcSDP is an SDP offer or answer as the WebTorrent protocol carries it.
type rtcSDP struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// binStr is b as a WebTorrent binary string: one code point 0–255 a byte.
func binStr(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// deadOffer is a real WebRTC offer from 127.0.0.1 whose PeerConnection is closed: an answer
// to it never connects.
func deadOffer(t *testing.T) rtcSDP {
	t.Helper()
	tr, err := rtc.NewTransport(rtc.Config{Bind: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := tr.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	return rtcSDP{Type: o.SDP.Type.String(), SDP: o.SDP.SDP}
}

// usageSampler samples a process's fds and RSS and a /metrics gauge every 200 ms, keeping
// the highest of each.
type usageSampler struct {
	mu                  sync.Mutex
	maxFDs              int
	maxRSS              int64
	maxPCs, maxRoutines float64
	samples             int
	err                 error
}

func sampleUsage(pid int, metricsURL string, stop <-chan struct{}) (*usageSampler, <-chan struct{}) {
	s := &usageSampler{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			fds, err := procFDs(pid)
			rss, rerr := readRSS(pid)
			body, merr := httpGet(metricsURL)
			s.mu.Lock()
			if err = errors.Join(err, rerr, merr); err != nil {
				s.err = fmt.Errorf("sampling seedctl: %w", err)
				s.mu.Unlock()
				return
			}
			pcs := metricSum(body, "webswarm_seed_webrtc_peer_connections")
			routines := metricSum(body, "go_goroutines")
			s.maxFDs, s.maxRSS = max(s.maxFDs, fds), max(s.maxRSS, rss)
			s.maxPCs, s.maxRoutines = max(s.maxPCs, pcs), max(s.maxRoutines, routines)
			s.samples++
			s.mu.Unlock()
		}
	}()
	return s, done
}

// TestWebRTCHostileTrackerFlood: a hostile WebSocket tracker, listed by the torrent beside
// ours, floods `seedctl seed` with 2,000 offers a second for 15 s. seedctl's PeerConnections
// stay within --webrtc-max-peers plus --webrtc-max-offers, the hostile tracker holding at
// most --webrtc-torrent-peers of them; its goroutines, file descriptors and RSS stay bounded
// (read from /proc and /metrics all along); the offers it refused are counted in /metrics;
// and an honest WebRTC peer, meeting seedctl through our tracker during the flood,
// downloads the whole file.
func TestWebRTCHostileTrackerFlood(t *testing.T) {
	seedctl, _, wsURL, ok := rtcSetup(t)
	if !ok {
		return
	}
	const (
		maxPeers     = 30
		torrentPeers = 10
		maxOffers    = 10
		rate         = 2000
		floodFor     = 15 * time.Second
	)
	dir := t.TempDir()
	file := filepath.Join(dir, "flood.bin")
	data := scWriteFile(t, file, 4<<20)

	// The hostile tracker needs the info-hash, which needs its URL: reserve the port first.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopFlood := func() { stopOnce.Do(func() { close(stop) }) }
	t.Cleanup(stopFlood)
	hostilePort := testenv.FreePort(t, "127.0.0.1")
	hostileURL := fmt.Sprintf("ws://127.0.0.1:%d/announce", hostilePort)
	made := scMake(t, file, "-t", hostileURL, "-t", wsURL, "--piece-size", "256KiB", "-o", file+".torrent")
	var ih bittorrent.InfoHash
	hex.Decode(ih[:], []byte(made.InfoHash))
	h := startHostileTrackerOn(t, hostilePort, ih, deadOffer(t), rate, rate*int(floodFor/time.Second), stop)

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
	seed := testenv.Start(t, seedctl, "seed", file+".torrent", "--data", dir, "--bind", "127.0.0.1",
		"--webrtc", "on", "--webrtc-bind", "127.0.0.1", "--webrtc-max-peers", strconv.Itoa(maxPeers),
		"--webrtc-torrent-peers", strconv.Itoa(torrentPeers), "--webrtc-max-offers", strconv.Itoa(maxOffers),
		"--metrics", metricsAddr, "--state", t.TempDir(), "-q")
	metricsURL := "http://" + metricsAddr + "/metrics"
	testenv.WaitFor(t, 30*time.Second, "the flood under way", func() error {
		if n := h.sent.Load(); n < rate {
			return fmt.Errorf("%d offers sent", n)
		}
		return nil
	})
	samplerStop := make(chan struct{})
	usage, sampled := sampleUsage(seed.Cmd.Process.Pid, metricsURL, samplerStop)

	start := time.Now()
	c, r, w := rtcPeer(t, wsURL, made.InfoHash, "honest")
	rtcDownload(t, c, r, w, data, 256<<10, 2*time.Minute)
	t.Logf("the honest peer downloaded %d bytes in %v during the flood (%d offers sent so far)", len(data), time.Since(start), h.sent.Load())
	testenv.WaitFor(t, floodFor+30*time.Second, "the flood's end", func() error {
		select {
		case <-h.done:
			return nil
		default:
			return fmt.Errorf("%d offers sent", h.sent.Load())
		}
	})
	close(samplerStop)
	<-sampled
	stopFlood()

	usage.mu.Lock()
	defer usage.mu.Unlock()
	if usage.err != nil {
		t.Fatal(usage.err)
	}
	t.Logf("%d offers sent; seedctl at most: %v PeerConnections, %v goroutines, %d fds, %.1f MiB RSS (%d samples)",
		h.sent.Load(), usage.maxPCs, usage.maxRoutines, usage.maxFDs, float64(usage.maxRSS)/(1<<20), usage.samples)
	if usage.samples < 10 {
		t.Fatalf("only %d samples of seedctl's usage", usage.samples)
	}
	if usage.maxPCs > maxPeers+maxOffers {
		t.Errorf("seedctl held %v PeerConnections, over --webrtc-max-peers + --webrtc-max-offers (%d)", usage.maxPCs, maxPeers+maxOffers)
	}
	// Each PeerConnection holds a UDP socket and a few dozen goroutines of pion's; the
	// bounds leave room for those of maxPeers + maxOffers and the process's own, and are
	// far below what answering even a tenth of the offers would take.
	if usage.maxRoutines > 1000 || usage.maxFDs > 200 || usage.maxRSS > 120<<20 {
		t.Errorf("seedctl's usage is not bounded: %v goroutines, %d fds, %d MiB RSS", usage.maxRoutines, usage.maxFDs, usage.maxRSS>>20)
	}
	body, err := httpGet(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	refused := metricSum(body, "webswarm_seed_webrtc_refused_total")
	if refused < float64(h.sent.Load())/2 {
		t.Errorf("webswarm_seed_webrtc_refused_total = %v after %d hostile offers: most must be refused and counted", refused, h.sent.Load())
	}
	t.Logf("refused: %s", regexp.MustCompile(`(?m)^webswarm_seed_webrtc_refused_total.*$`).FindAll(body, -1))
}

// TestWebRTCSlowReaderBounded: a WebRTC peer that requests 64 MiB of blocks and never reads
// holds seedctl to its bounded write queue (1 MiB in SCTP): seedctl's RSS stays bounded, the
// peer is choked as a stalled upload (webswarm_seed_upload_stalls_total), and an honest
// WebRTC peer downloads the whole file meanwhile.
func TestWebRTCSlowReaderBounded(t *testing.T) {
	seedctl, _, wsURL, ok := rtcSetup(t)
	if !ok {
		return
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "slow.bin")
	data := scWriteFile(t, file, 16<<20)
	made := scMake(t, file, "-t", wsURL, "--piece-size", "256KiB", "-o", file+".torrent")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
	seed := testenv.Start(t, seedctl, "seed", file+".torrent", "--data", dir, "--bind", "127.0.0.1",
		"--webrtc", "on", "--webrtc-bind", "127.0.0.1", "--upload-stall-timeout", "2s",
		"--metrics", metricsAddr, "--state", t.TempDir(), "-q")
	metricsURL := "http://" + metricsAddr + "/metrics"

	// The slow peer: interested, unchoked, then every block of the file requested, and
	// nothing read after the UNCHOKE.
	slow, r, w := rtcPeer(t, wsURL, made.InfoHash, "slow")
	slow.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
	w.Interested()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var m wire.Message
	for m.ID != wire.Unchoke {
		if err := r.Read(&m); err != nil {
			t.Fatalf("slow peer waiting for UNCHOKE: %v", err)
		}
	}
	for range 4 { // 64 MiB asked for: more than the queue takes, and than seedctl may hold
		for off := 0; off < len(data); off += 16 << 10 {
			w.Request(uint32(off/(256<<10)), uint32(off%(256<<10)), 16<<10)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("slow peer's requests: %v", err)
	}
	slow.NetConn().SetDeadline(time.Time{})

	samplerStop := make(chan struct{})
	usage, sampled := sampleUsage(seed.Cmd.Process.Pid, metricsURL, samplerStop)
	testenv.WaitFor(t, 60*time.Second, "the slow peer choked as a stalled upload", func() error {
		body, err := httpGet(metricsURL)
		if err != nil {
			return err
		}
		if v := metricSum(body, "webswarm_seed_upload_stalls_total"); v < 1 {
			return fmt.Errorf("webswarm_seed_upload_stalls_total = %v", v)
		}
		return nil
	})
	c, hr, hw := rtcPeer(t, wsURL, made.InfoHash, "honest")
	rtcDownload(t, c, hr, hw, data, 256<<10, 2*time.Minute)
	close(samplerStop)
	<-sampled

	usage.mu.Lock()
	defer usage.mu.Unlock()
	if usage.err != nil {
		t.Fatal(usage.err)
	}
	t.Logf("seedctl at most: %d fds, %.1f MiB RSS, %v goroutines (%d samples)", usage.maxFDs, float64(usage.maxRSS)/(1<<20), usage.maxRoutines, usage.samples)
	// The slow peer asked for the 16 MiB file four times over: were what it asked for
	// written to SCTP unbounded, the RSS would grow by up to 64 MiB. 1 MiB in SCTP and the
	// session's request queue keep it far below.
	if usage.maxRSS > 60<<20 {
		t.Errorf("seedctl's RSS reached %d MiB with a peer that does not read", usage.maxRSS>>20)
	}
}
