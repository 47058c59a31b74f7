package e2e

// The WebSocket (WebTorrent) tracker behind real nginx and Apache, through the shipped
// snippets: the HTTP proxy snippets pass the upgrade on /announce, the FastCGI ones send it
// to the tracker's HTTP port. The only change to the shipped files is the proxy read timeout,
// shortened from 60 s to a few seconds, with the tracker's ping interval shortened to match,
// so that "an idle peer outlives the proxy's read timeout" takes seconds, not minutes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/webswarm/webswarm/internal/testenv"
)

// wsProxyTimeout is the proxies' read timeout in these tests (seconds); the tracker pings
// every second.
const wsProxyTimeout = 3

// wsStartSite starts a tracker (with extra arguments) and the front end of path p in front of
// it, the front end's proxy read timeout shortened to wsProxyTimeout.
func wsStartSite(t *testing.T, p webPath, extra ...string) *webSite {
	t.Helper()
	dir := webDir(t)
	be := webBackend{FCGISocket: filepath.Join(dir, "tracker.sock")}
	args := append([]string(nil), extra...)
	if p.FCGI {
		_, group := webUser(t)
		args = append(args, "--fcgi", "unix:"+be.FCGISocket, "--fcgi_socket_mode", "0660", "--fcgi_socket_group", group)
	}
	s := &webSite{Path: p, Dir: dir, args: args}
	s.Tracker = startTracker(t, args...)
	if p.FCGI {
		testenv.WaitFor(t, 10*time.Second, "the tracker's FastCGI socket", func() error {
			_, err := os.Stat(be.FCGISocket)
			return err
		})
	}
	be.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", s.Tracker.Port)
	port := webFreePort(t)
	s.Front = webRunFront(t, p, dir, port, wsFrontCmd(t, p, dir, port, be))
	return s
}

// wsFrontCmd returns the front end's command: the e2e main config with the shipped snippets,
// the proxy read timeout shortened.
func wsFrontCmd(t *testing.T, p webPath, dir string, port int, be webBackend) *exec.Cmd {
	root := testenv.RepoRoot(t)
	switch p.Server {
	case "nginx":
		conf := webNginxConf(t, dir, port, p.Snippet, be)
		snippet, err := os.ReadFile(filepath.Join(root, "nginx-conf", p.Snippet))
		if err != nil {
			t.Fatal(err)
		}
		short := strings.ReplaceAll(string(snippet), "proxy_read_timeout 60s;", "proxy_read_timeout "+strconv.Itoa(wsProxyTimeout)+"s;")
		if short == string(snippet) {
			t.Fatalf("nginx-conf/%s sets no proxy_read_timeout 60s", p.Snippet)
		}
		copyPath := filepath.Join(dir, p.Snippet)
		writeFile(t, copyPath, short)
		main, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, conf, strings.Replace(string(main), filepath.Join(root, "nginx-conf", p.Snippet), copyPath, 1))
		return webNginxCmd(t, dir, conf, "-g", "daemon off;")
	case "apache":
		bin := testenv.Require(t, "apache2", "apache2")
		main, err := os.ReadFile(filepath.Join(root, "e2e", "testdata", "web-apache.conf"))
		if err != nil {
			t.Fatal(err)
		}
		// Apache relays an upgraded connection until it is idle for Timeout (measured: not
		// ProxyTimeout); the
		// FastCGI snippets' WebSocket rule needs mod_rewrite and WEBSWARM_TRACKER defined.
		extra := "LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so\n" +
			"Timeout " + strconv.Itoa(wsProxyTimeout) + "\n" +
			"Define WEBSWARM_TRACKER ${WEBSWARM_TRACKER}\n"
		conf := strings.Replace(string(main), "Include ${WS_CONF}/webswarm.conf", extra+"Include ${WS_CONF}/webswarm.conf", 1)
		confPath := filepath.Join(dir, "apache.conf")
		writeFile(t, confPath, conf)
		cmd := exec.Command(bin, "-f", confPath, "-DFOREGROUND")
		cmd.Env = webApacheEnv(t, dir, port, p.Snippet, be)
		return cmd
	}
	t.Fatalf("unknown server %q", p.Server)
	return nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wsPeer is a WebSocket client as a browser is one: it reads all the time (so it answers
// pings), and its messages wait in a channel.
type wsPeer struct {
	t    *testing.T
	ws   *websocket.Conn
	msgs chan map[string]any
	done chan error // the read error that ended it
}

// wsDial connects from localIP to the announce URL; it returns the handshake's status when
// the server refused it.
func wsDial(t *testing.T, url, localIP string) (*wsPeer, int, error) {
	t.Helper()
	d := websocket.Dialer{
		NetDial:          (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}).Dial,
		HandshakeTimeout: 10 * time.Second,
	}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	p := &wsPeer{t: t, ws: ws, msgs: make(chan map[string]any, 64), done: make(chan error, 1)}
	t.Cleanup(func() { ws.Close() })
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				p.done <- err
				close(p.msgs)
				return
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				m = map[string]any{"unparsable": string(data)}
			}
			p.msgs <- m
		}
	}()
	return p, 0, nil
}

func mustDial(t *testing.T, url, localIP string) *wsPeer {
	t.Helper()
	p, status, err := wsDial(t, url, localIP)
	if err != nil {
		t.Fatalf("WebSocket to %s from %s: %v (status %d)", url, localIP, err, status)
	}
	return p
}

func (p *wsPeer) send(v any) {
	p.t.Helper()
	p.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := p.ws.WriteJSON(v); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *wsPeer) recv() map[string]any {
	p.t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok {
			p.t.Fatalf("connection closed: %v", <-p.done)
		}
		return m
	case <-time.After(15 * time.Second):
		p.t.Fatal("no message in 15 s")
	}
	return nil
}

// closed waits for the connection to end and returns its close code (0 if none).
func (p *wsPeer) closed() int {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-p.msgs:
			if ok {
				continue
			}
			var ce *websocket.CloseError
			if err := <-p.done; errors.As(err, &ce) {
				return ce.Code
			}
			return 0
		case <-deadline:
			p.t.Fatal("connection still open after 15 s")
		}
	}
}

// wsBin is a 20-character binary string: tag, then code points 0xe0… (two UTF-8 bytes each,
// as JavaScript sends them).
func wsBin(tag string) string {
	var r [20]rune
	for i := range r {
		r[i] = rune(0xe0 + i)
	}
	for i, c := range []byte(tag) {
		r[i] = rune(c)
	}
	return string(r[:])
}

func wsAnnounce(ih, peer string, left int, offers ...map[string]any) map[string]any {
	m := map[string]any{"action": "announce", "info_hash": ih, "peer_id": peer, "left": left,
		"numwant": len(offers), "uploaded": 0, "downloaded": 0}
	if len(offers) > 0 {
		m["offers"] = offers
	}
	return m
}

// wsOffers returns n offers (about 55 bytes each).
func wsOffers(n int) []map[string]any {
	offers := make([]map[string]any, n)
	for i := range offers {
		offers[i] = map[string]any{"offer_id": wsBin(strconv.Itoa(i)), "offer": map[string]any{}}
	}
	return offers
}

func TestWebSocketTrackerBehindProxies(t *testing.T) {
	for _, p := range webPaths {
		if p.TCP {
			continue // the unix-socket FastCGI paths cover the FastCGI snippets' WebSocket rule
		}
		t.Run(p.Name, func(t *testing.T) {
			s := wsStartSite(t, p, "--ws_ping_interval", "1", "--ws_idle_timeout", "30",
				"--ws_max_connections_per_ip", "4", "--ws_max_bad_messages", "3")
			url := "ws" + strings.TrimPrefix(s.Front.URL, "http") + "/announce"
			wsTestRelay(t, s, url)
		})
	}
}

func wsTestRelay(t *testing.T, s *webSite, url string) {
	ih := wsBin(fmt.Sprintf("%s-%d", s.Path.Name, time.Now().UnixNano()%1e6))
	a, b := mustDial(t, url, "127.0.0.2"), mustDial(t, url, "127.0.0.3")

	// Two peers exchange an offer and its answer through the tracker.
	a.send(wsAnnounce(ih, wsBin("peer-a"), 0))
	if r := a.recv(); r["complete"] != 1.0 || r["incomplete"] != 0.0 || r["interval"] == nil {
		t.Fatalf("A's announce reply: %v", r)
	}
	oid := wsBin("offer-1")
	b.send(wsAnnounce(ih, wsBin("peer-b"), 100, map[string]any{"offer_id": oid, "offer": map[string]any{"type": "offer", "sdp": "v=0 b"}}))
	if r := b.recv(); r["complete"] != 1.0 || r["incomplete"] != 1.0 {
		t.Fatalf("B's announce reply: %v", r)
	}
	off := a.recv()
	if off["peer_id"] != wsBin("peer-b") || off["offer_id"] != oid {
		t.Fatalf("offer relayed to A: %v", off)
	}
	a.send(map[string]any{"action": "announce", "info_hash": ih, "peer_id": wsBin("peer-a"), "to_peer_id": wsBin("peer-b"),
		"offer_id": oid, "answer": map[string]any{"type": "answer", "sdp": "v=0 a"}})
	if ans := b.recv(); ans["peer_id"] != wsBin("peer-a") || ans["answer"].(map[string]any)["sdp"] != "v=0 a" {
		t.Fatalf("answer relayed to B: %v", ans)
	}

	// Scrape counts them; so do stats.json and the metrics.
	scrape := func(p *wsPeer) map[string]any {
		t.Helper()
		p.send(map[string]any{"action": "scrape", "info_hash": []string{ih}})
		r := p.recv()
		files, _ := r["files"].(map[string]any)
		if files == nil || files[ih] == nil {
			t.Fatalf("scrape reply: %v", r)
		}
		return files[ih].(map[string]any)
	}
	if f := scrape(a); f["complete"] != 1.0 || f["incomplete"] != 1.0 {
		t.Fatalf("scrape: %v", f)
	}
	var stats struct {
		Seeders, Leechers int
		Peers             map[string]int `json:"peers"`
	}
	if err := json.Unmarshal(webRaw(t, webClient("127.0.0.1"), s.Front.URL+"/tracker/stats.json", nil), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Peers["webtorrent"] != 2 || stats.Seeders != 1 || stats.Leechers != 1 {
		t.Fatalf("stats.json through %s: %+v", s.Path.Name, stats)
	}
	metrics := string(webRaw(t, webClient("127.0.0.1"), s.Tracker.Base+"/metrics", nil))
	for _, want := range []string{`webswarm_tracker_peers{family="webtorrent",role="seeder"} 1`,
		`webswarm_tracker_ws_offers_relayed_total 1`, `webswarm_tracker_ws_answers_relayed_total 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Hostile input from a third peer is refused, and A and B go on as before.
	// A message over --ws_max_message closes the connection (the tracker sends close 1009;
	// whether the client reads it before the proxy resets a socket it is still writing to
	// is up to the proxy, so the tracker's count is what is checked here).
	hostile := []struct {
		name  string
		send  func(h *wsPeer)
		close bool // the connection is closed, else a failure reason comes back
	}{
		{"bad JSON", func(h *wsPeer) { h.ws.WriteMessage(websocket.TextMessage, []byte("{not json")) }, false},
		{"binary frame", func(h *wsPeer) { h.ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}) }, false},
		{"a thousand offers", func(h *wsPeer) { h.ws.WriteJSON(wsAnnounce(ih, wsBin("hostile"), 1, wsOffers(1000)...)) }, false},
		// Thousands do not fit in a message (--ws_max_message, 64 KiB).
		{"thousands of offers", func(h *wsPeer) { h.ws.WriteJSON(wsAnnounce(ih, wsBin("hostile"), 1, wsOffers(3000)...)) }, true},
		{"huge frame", func(h *wsPeer) {
			h.ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"scrape","x":"`+strings.Repeat("x", 200<<10)+`"}`))
		}, true},
	}
	tooLarge := 0
	for _, hc := range hostile {
		h := mustDial(t, url, "127.0.0.9")
		hc.send(h)
		if !hc.close {
			if r := h.recv(); r["failure reason"] == nil {
				t.Errorf("%s: reply %v, want a failure reason", hc.name, r)
			}
		} else {
			h.closed()
			tooLarge++
			want := fmt.Sprintf(`webswarm_tracker_ws_closed_total{reason="too_large"} %d`, tooLarge)
			testenv.WaitFor(t, 10*time.Second, want, func() error {
				if !strings.Contains(string(webRaw(t, webClient("127.0.0.1"), s.Tracker.Base+"/metrics", nil)), want) {
					return errors.New("not yet")
				}
				return nil
			})
		}
		h.ws.Close()
	}
	// Repeated abuse closes the connection (policy violation) after --ws_max_bad_messages.
	h := mustDial(t, url, "127.0.0.9")
	for i := 0; i < 3; i++ {
		h.ws.WriteMessage(websocket.TextMessage, []byte("[]"))
	}
	if code := h.closed(); code != websocket.ClosePolicyViolation {
		t.Errorf("after 3 bad messages: close %d, want 1008", code)
	}
	// Answers to nobody's offer reach nobody.
	h = mustDial(t, url, "127.0.0.9")
	for i := 0; i < 50; i++ {
		h.send(map[string]any{"action": "announce", "info_hash": ih, "peer_id": wsBin("hostile"), "to_peer_id": wsBin("peer-b"),
			"offer_id": wsBin("offer-" + strconv.Itoa(i)), "answer": map[string]any{"type": "answer", "sdp": "x"}})
	}
	scrape(h) // its answers have all been handled
	if f := scrape(b); f["complete"] != 1.0 || f["incomplete"] != 1.0 {
		t.Fatalf("B after the hostile peers (an answer to nobody's offer would come first): %v", f)
	}
	// Connections from one IP are capped (--ws_max_connections_per_ip 4); others still connect.
	for i := 0; i < 3; i++ {
		mustDial(t, url, "127.0.0.9")
	}
	if _, status, err := wsDial(t, url, "127.0.0.9"); err == nil || status != http.StatusTooManyRequests {
		t.Fatalf("fifth connection from one IP: %v, status %d, want 429", err, status)
	}
	c := mustDial(t, url, "127.0.0.4")
	c.send(wsAnnounce(ih, wsBin("peer-c"), 5))
	if r := c.recv(); r["complete"] != 1.0 || r["incomplete"] != 2.0 {
		t.Fatalf("C after the flood: %v", r)
	}

	// An idle peer outlives the proxy's read timeout: the tracker's pings keep it open.
	// (wsProxyTimeout is 3 s; wait more than twice that, bounded.)
	idleUntil := time.Now().Add(2*wsProxyTimeout*time.Second + time.Second)
	for time.Now().Before(idleUntil) {
		select {
		case m, ok := <-a.msgs:
			if !ok {
				t.Fatalf("idle peer cut: %v", <-a.done)
			}
			t.Fatalf("idle peer got %v", m)
		case <-time.After(time.Until(idleUntil)):
		}
	}
	if f := scrape(a); f["complete"] != 1.0 {
		t.Fatalf("idle peer's scrape: %v", f)
	}

	// An HTTP peer of the same torrent is in the same swarm view (each side's counts include
	// the other) but never meets the browsers: its announce gets no WebSocket peer, and they
	// get no offer from it.
	var rawIH []byte
	for _, r := range ih {
		rawIH = append(rawIH, byte(r))
	}
	httpResp := webAnnounce(t, webClient("127.0.0.5"), s.Front.URL,
		announceQuery([20]byte(rawIH), "-TR3000-httppeer0001", 6881, 0), nil)
	if peers := webPeers(t, httpResp); len(peers) != 0 {
		t.Errorf("HTTP announce got peers %v: WebSocket peers must not be handed to HTTP clients", peers)
	}
	if httpResp.Complete != 2 || httpResp.Incomplete != 2 {
		t.Errorf("HTTP announce reply: %d seeders, %d leechers; want A and itself, B and C", httpResp.Complete, httpResp.Incomplete)
	}
	if f := scrape(a); f["complete"] != 2.0 || f["incomplete"] != 2.0 {
		t.Errorf("WebSocket scrape does not count the HTTP peer: %v", f)
	}

	// stopped removes a peer; a closed socket removes it at once.
	c.send(map[string]any{"action": "announce", "info_hash": ih, "peer_id": wsBin("peer-c"), "event": "stopped", "left": 5})
	c.recv()
	b.ws.Close()
	testenv.WaitFor(t, 10*time.Second, "B's peer to leave with its socket", func() error {
		if f := scrape(a); f["incomplete"] != 0.0 || f["complete"] != 2.0 {
			return fmt.Errorf("scrape %v", f)
		}
		return nil
	})

	// The state file holds the HTTP peer, never the WebSocket ones: SIGTERM saves it with A
	// still connected.
	s.Tracker.Proc.Stop(10 * time.Second)
	state, err := os.ReadFile(s.Tracker.Dfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(state), "-TR3000-httppeer0001") {
		t.Errorf("state file lacks the HTTP peer:\n%q", state)
	}
	if strings.Contains(string(state), "peer-a") {
		t.Errorf("state file holds a WebSocket peer:\n%q", state)
	}
}

// The swarm limits and the connection cap apply to WebSocket peers of the built tracker:
// --allowed_dir, --max_peers, --ws_max_connections.
func TestWebSocketTrackerLimits(t *testing.T) {
	testenv.Require(t, "mktorrent", "mktorrent")
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	if err := os.Mkdir(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	writePayload(t, dir, "big.iso", 100_000)
	tf := makeTorrent(t, filepath.Join(dir, "big.iso"), "http://127.0.0.1:9/announce")
	data, err := os.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(allowed, "big.iso.torrent"), string(data))
	var ihRunes []rune
	for _, c := range readTorrent(t, tf).InfoHash {
		ihRunes = append(ihRunes, rune(c))
	}
	ih := string(ihRunes)
	tp := startTracker(t, "--allowed_dir", allowed, "--max_peers", "1", "--ws_max_connections", "3")
	url := "ws" + strings.TrimPrefix(tp.Base, "http") + "/announce"
	a := mustDial(t, url, "127.0.0.2")
	a.send(wsAnnounce(wsBin("not-allowed"), wsBin("peer-a"), 0))
	if r := a.recv(); !strings.Contains(fmt.Sprint(r["failure reason"]), "not authorized") {
		t.Errorf("torrent outside --allowed_dir: %v", r)
	}
	// The torrent in the allowed directory: one peer fits (--max_peers 1), a second does not.
	a.send(wsAnnounce(ih, wsBin("peer-a"), 0))
	if r := a.recv(); r["complete"] != 1.0 {
		t.Fatalf("allowed torrent: %v", r)
	}
	b := mustDial(t, url, "127.0.0.3")
	b.send(wsAnnounce(ih, wsBin("peer-b"), 0))
	if r := b.recv(); !strings.Contains(fmt.Sprint(r["failure reason"]), "torrent is full") {
		t.Errorf("second peer over --max_peers 1: %v", r)
	}
	mustDial(t, url, "127.0.0.4")
	if _, status, err := wsDial(t, url, "127.0.0.5"); err == nil || status != http.StatusServiceUnavailable {
		t.Errorf("fourth connection over --ws_max_connections 3: %v, status %d, want 503", err, status)
	}
	metrics := string(webRaw(t, webClient("127.0.0.1"), tp.Base+"/metrics", nil))
	for _, want := range []string{`webswarm_tracker_ws_rejected_total{reason="not_allowed"} 1`,
		`webswarm_tracker_ws_rejected_total{reason="torrent_full"} 1`,
		`webswarm_tracker_ws_connections_refused_total{reason="total"} 1`,
		`webswarm_tracker_ws_connections 3`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
