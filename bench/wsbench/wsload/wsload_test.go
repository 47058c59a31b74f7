package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

func TestLatin1RoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tok := appendLatin1(nil, all)
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		t.Fatalf("appendLatin1 wrote invalid JSON %q: %v", tok, err)
	}
	var runes []byte
	for _, r := range s {
		runes = append(runes, byte(r))
		if r > 255 {
			t.Fatalf("code point %U", r)
		}
	}
	if !bytes.Equal(runes, all) {
		t.Fatalf("code points %v, want 0..255", runes)
	}
	// What another encoder writes (Go escapes <, >, & as \u003c…) decodes to the same bytes.
	other, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{tok, other} {
		got, err := decodeLatin1(in)
		if err != nil || !bytes.Equal(got, all) {
			t.Fatalf("decodeLatin1(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := decodeLatin1([]byte(`"\u0100"`)); !errors.Is(err, errNotLatin1) {
		t.Fatalf("decodeLatin1 of U+0100: %v, want errNotLatin1", err)
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		msg, key, want string
		ok             bool
	}{
		{`{"action":"announce","interval":24,"info_hash":"ab"}`, "interval", "24", true},
		{`{"action":"announce","offer":{"type":"offer"},"offer_id":"x\"y"}`, "offer_id", `"x\"y"`, true},
		{`{"action":"announce","offer_id":"z","offer":{"sdp":"s"}}`, "offer", "{", true},
		{`{"action": "announce", "interval" : 7}`, "interval", "7", true},
		{`{"action":"offer","x":"interval"}`, "offer", "", false},       // a value, not a key
		{`{"action":"announce","x":"\"offer\":1"}`, "offer", "", false}, // quotes escaped in a value
		{`{"failure reason":"bad"}`, "failure reason", `"bad"`, true},
		{`{"answer":`, "answer", "", false},
		{`{"peer_id":"unterminated`, "peer_id", "", false},
	}
	for _, tt := range tests {
		got, ok := field([]byte(tt.msg), tt.key)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("field(%s, %q) = %q, %v; want %q, %v", tt.msg, tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		msg  string
		want kind
	}{
		{`{"complete":0,"incomplete":3,"action":"announce","info_hash":"x","interval":24}`, kindReply},
		{`{"action":"announce","offer":{"type":"offer","sdp":"interval"},"offer_id":"o","peer_id":"p","info_hash":"i"}`, kindOffer},
		{`{"action":"announce","answer":{"type":"answer","sdp":"s"},"offer_id":"o","peer_id":"p","info_hash":"i"}`, kindAnswer},
		{`{"action":"announce","failure reason":"invalid info_hash","info_hash":"i"}`, kindFailure},
		{`{"action":"scrape","files":{}}`, kindOther},
	}
	for _, tt := range tests {
		if got := classify([]byte(tt.msg)); got != tt.want {
			t.Errorf("classify(%s) = %d, want %d", tt.msg, got, tt.want)
		}
	}
}

// The messages wsload sends are what the webtorrent client sends: valid JSON, 20-byte binary
// strings, offers with their IDs, answers addressed to the offering peer.
func TestMessages(t *testing.T) {
	ih := bytes.Repeat([]byte{0xff}, 20)
	id := []byte("-WS0001-\x00\x01\x02\"\\\x7f\x80\x90\xa0\xb0\xc0\xd0")
	oids := [][]byte{bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{'<'}, 20)}
	offerSDP := jsonString(sdp("offer", 500))
	var a struct {
		Action  string `json:"action"`
		InfoID  string `json:"info_hash"`
		PeerID  string `json:"peer_id"`
		Numwant int    `json:"numwant"`
		Event   string `json:"event"`
		Offers  []struct {
			Offer   struct{ Type, SDP string } `json:"offer"`
			OfferID string                     `json:"offer_id"`
		} `json:"offers"`
	}
	msg := announceMsg(nil, ih, id, 100, oids, offerSDP, false)
	if err := json.Unmarshal(msg, &a); err != nil {
		t.Fatalf("announce %s: %v", msg, err)
	}
	if a.Action != "announce" || len([]rune(a.InfoID)) != 20 || len([]rune(a.PeerID)) != 20 || a.Numwant != 2 || a.Event != "" ||
		len(a.Offers) != 2 || a.Offers[0].Offer.Type != "offer" || len(a.Offers[0].Offer.SDP) != 500 {
		t.Fatalf("announce decoded as %+v", a)
	}
	if got, _ := decodeLatin1(jsonString(a.Offers[1].OfferID)); !bytes.Equal(got, oids[1]) {
		t.Fatalf("offer_id %q, want %q", got, oids[1])
	}
	started := announceMsg(nil, ih, id, 0, nil, nil, true)
	if err := json.Unmarshal(started, &a); err != nil || a.Event != "started" || a.Numwant != 0 {
		t.Fatalf("started announce %s: %+v, %v", started, a, err)
	}

	// An answer copies the offer's tokens as the tracker wrote them.
	relayed := []byte(`{"action":"announce","offer":{"type":"offer","sdp":"x"},"offer_id":"\u0001<","peer_id":"\u00ff","info_hash":"ih"}`)
	ihTok, _ := field(relayed, "info_hash")
	fromTok, _ := field(relayed, "peer_id")
	oidTok, _ := field(relayed, "offer_id")
	ans := answerMsg(nil, ihTok, id, fromTok, oidTok, jsonString(sdp("answer", 500)))
	var b struct {
		InfoHash string `json:"info_hash"`
		ToPeerID string `json:"to_peer_id"`
		OfferID  string `json:"offer_id"`
		Answer   struct{ Type, SDP string }
	}
	if err := json.Unmarshal(ans, &b); err != nil {
		t.Fatalf("answer %s: %v", ans, err)
	}
	if b.InfoHash != "ih" || b.ToPeerID != "\u00ff" || b.OfferID != "\u0001<" || b.Answer.Type != "answer" {
		t.Fatalf("answer decoded as %+v", b)
	}
}

func TestHist(t *testing.T) {
	var h hist
	if h.quantile(0.99) != 0 {
		t.Fatal("empty histogram has a quantile")
	}
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*histGrowth {
			t.Errorf("quantile(%v) = %v, want %v within 2 %%", c.q, got, c.want)
		}
	}
}

// btTracker starts npm bittorrent-tracker's WebSocket server (bench/wsbench/btserver, installed
// by its install.sh, which scripts/test.sh runs) and returns its announce URL and PID.
func btTracker(t *testing.T) (string, int) {
	t.Helper()
	node := testenv.Require(t, "node", "nodejs")
	dir := filepath.Join(testenv.RepoRoot(t), "bench", "wsbench", "btserver")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "bittorrent-tracker", "server.js")); err != nil {
		testenv.Missing(t, "npm bittorrent-tracker not installed: run bench/wsbench/btserver/install.sh (scripts/test.sh does)")
	}
	port := testenv.FreePort(t, "127.0.0.1")
	cmd := exec.Command(node, "server.mjs", strconv.Itoa(port))
	cmd.Dir = dir
	p := testenv.StartCmd(t, cmd)
	testenv.WaitFor(t, 20*time.Second, "bittorrent-tracker listening", func() error {
		if done, err := p.Exited(); done {
			t.Fatalf("bittorrent-tracker exited: %v\n%s", err, p.Output())
		}
		if !strings.Contains(p.Output(), "listening") {
			return errors.New("no \"listening\" line yet")
		}
		return nil
	})
	return fmt.Sprintf("ws://127.0.0.1:%d/announce", port), p.Cmd.Process.Pid
}

func testConfig(url string) config {
	return config{URL: url, Peers: 40, Swarms: 4, Sources: 3, Offers: 3, SDPBytes: 500, Conc: 8, ConnectConc: 8,
		Dur: 300 * time.Millisecond, Timeout: 10 * time.Second, ConnectMax: time.Minute, Seed: 7, ReadLimit: 1 << 20}
}

// Against the real peer tracker: every peer connects from its source address, every offer of
// a round is relayed (a swarm of 10 has 9 others for 3 offers) and every relayed offer is
// answered back to the peer that made it, matching one of its offer IDs.
func TestAgainstBittorrentTracker(t *testing.T) {
	url, _ := btTracker(t)
	cfg := testConfig(url)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	l := newLoad(cfg)
	defer l.close()
	if failed, err := l.connect(); failed != 0 || err != nil {
		t.Fatalf("connect: %d failed: %v", failed, err)
	}
	if len(l.live) != cfg.Peers {
		t.Fatalf("%d peers live, want %d", len(l.live), cfg.Peers)
	}
	l.round(1, 0)
	c := &l.c
	if c.announces.Load() == 0 || c.offersSent.Load() != int64(cfg.Offers)*c.announces.Load() {
		t.Fatalf("%d announces with %d offers", c.announces.Load(), c.offersSent.Load())
	}
	// The last answers may still be on their way: wait for them, bounded.
	testenv.WaitFor(t, 20*time.Second, "every offer relayed and answered", func() error {
		if s, r, m := c.offersSent.Load(), c.offersRelayed.Load(), c.answersMatched.Load(); r != s || m != s {
			return fmt.Errorf("%d offers sent, %d relayed, %d answers matched", s, r, m)
		}
		return nil
	})
	if c.failures.Load() != 0 || c.timeouts.Load() != 0 || c.writeErrs.Load() != 0 || c.closed.Load() != 0 || c.other.Load() != 0 ||
		c.answersRecv.Load() != c.answersMatched.Load() {
		t.Fatalf("failures %d timeouts %d write errors %d closed %d other %d, answers %d received %d matched",
			c.failures.Load(), c.timeouts.Load(), c.writeErrs.Load(), c.closed.Load(), c.other.Load(), c.answersRecv.Load(), c.answersMatched.Load())
	}
	if l.lat.n.Load() != c.announces.Load() || l.ansLat.n.Load() != c.answersMatched.Load() {
		t.Fatalf("latencies: %d announce, %d answer samples", l.lat.n.Load(), l.ansLat.n.Load())
	}
}

// The built program, as scripts/bench-ws.sh runs it: a ready line with the tracker's RSS, then
// one round per line on stdin (a closed loop, then paced at 200 announces/s), until "quit";
// each line's fields parse.
func TestProgramControl(t *testing.T) {
	url, pid := btTracker(t)
	bin := testenv.Build(t, "./bench/wsbench/wsload")
	cmd := exec.Command(bin, "-url", url, "-peers", "30", "-swarms", "3", "-sources", "2", "-conc", "4",
		"-dur", "200ms", "-rounds", "5", "-control", "-settle", "100ms", "-name", "bt", "-pid", strconv.Itoa(pid))
	cmd.Stdin = strings.NewReader("go\ngo 200\nquit\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wsload: %v\n%s", err, errOut.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("wsload still running after 2 min\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 { // ready + the two rounds before "quit"
		t.Fatalf("output:\n%s\nwant a ready line and 2 rounds", out.String())
	}
	for i, line := range lines {
		kv := parseLine(t, line)
		if kv["name"] != "bt" {
			t.Fatalf("line %q: name %q", line, kv["name"])
		}
		if i == 0 {
			if kv["connected"] != "30" || num(t, kv, "rss_kb") <= 0 || num(t, kv, "rss_per_peer_b") == 0 || num(t, kv, "rss_settled_kb") <= 0 {
				t.Fatalf("ready line %q", line)
			}
			continue
		}
		if want := []string{"", "0", "200"}[i]; kv["rate"] != want {
			t.Fatalf("round line %q: rate %q, want %s", line, kv["rate"], want)
		}
		if kv["round"] != strconv.Itoa(i) || num(t, kv, "announces") <= 0 || num(t, kv, "offers_relayed") <= 0 ||
			num(t, kv, "p99_ms") <= 0 || num(t, kv, "tracker_cpu_s") < 0 || num(t, kv, "failures") != 0 {
			t.Fatalf("round line %q", line)
		}
	}
}

func parseLine(t *testing.T, line string) map[string]string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "WSLOAD" {
		t.Fatalf("line %q does not start with WSLOAD", line)
	}
	kv := map[string]string{}
	for _, w := range f[1:] {
		k, v, _ := strings.Cut(w, "=")
		kv[k] = v
	}
	return kv
}

func num(t *testing.T, kv map[string]string, k string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(kv[k], 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, kv[k], err)
	}
	return v
}

// A tracker that is not there: the connect phase fails with the dial error, bounded.
func TestNoTracker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testConfig("ws://" + addr + "/announce")
	cfg.Peers = 4
	cfg.Conc = 2
	err = run(cfg, "none", 0, 1, 0, 0, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "0 of 4 peers connected") || !strings.Contains(err.Error(), "dial") {
		t.Fatalf("run against a closed port: %v", err)
	}
}
