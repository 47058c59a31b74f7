package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

func newHandler(t *testing.T, mod func(*Config)) *Handler {
	t.Helper()
	return newHandlerTB(t, mod)
}

func newHandlerTB(t testing.TB, mods ...func(*Config)) *Handler {
	t.Helper()
	st, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := announce.New(announce.Config{}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(); st.Close() })
	cfg := Config{Tracker: tr, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, OnlyLocalOverrideIP: 1}
	for _, mod := range mods {
		if mod != nil {
			mod(&cfg)
		}
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// esc percent-encodes every byte, as clients do for binary values.
func esc(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02X", c)
	}
	return s.String()
}

type reply struct {
	Failure     string        `bencode:"failure reason"`
	Complete    int           `bencode:"complete"`
	Incomplete  int           `bencode:"incomplete"`
	Downloaded  int           `bencode:"downloaded"`
	Interval    int           `bencode:"interval"`
	MinInterval int           `bencode:"min interval"`
	ExternalIP  string        `bencode:"external ip"`
	TrackerID   string        `bencode:"tracker id"`
	Peers6      string        `bencode:"peers6"`
	Peers       bencode.Bytes `bencode:"peers"`
}

func get(t *testing.T, h http.Handler, remote, target string, hdr map[string]string) reply {
	t.Helper()
	r := httptest.NewRequest("GET", "http://tracker"+target, nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("%s: status %d", target, w.Code)
	}
	var rep reply
	if err := bencode.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatalf("%s: reply %q does not decode: %v", target, w.Body.Bytes(), err)
	}
	return rep
}

func ann(ih, id []byte, port int, extra string) string {
	return fmt.Sprintf("/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%s", esc(ih), esc(id), port, extra)
}

func TestAnnounceCompactAndClientIP(t *testing.T) {
	h := newHandler(t, nil)
	ih := []byte("\x00;+%/\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\xff")
	rep := get(t, h, "127.0.0.1:5000", ann(ih, []byte("-TR3000-;+%/aaaaaaaa"), 6881, "100"), map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
	if rep.Failure != "" || rep.Incomplete != 1 || rep.Interval != 1800 || rep.MinInterval != 900 || rep.TrackerID != "webswarm" {
		t.Fatalf("first announce: %+v", rep)
	}
	if rep.ExternalIP != "\xcb\x00\x71\x07" {
		t.Fatalf("external ip %x, want the last X-Forwarded-For entry 203.0.113.7", rep.ExternalIP)
	}
	// The second peer comes straight from an untrusted address: its headers are ignored.
	rep = get(t, h, "198.51.100.9:5000", ann(ih, []byte("-TR3000-bbbbbbbbbbbb"), 6882, "0"), map[string]string{"X-Real-IP": "1.1.1.1"})
	want := string([]byte{203, 0, 113, 7, 0x1a, 0xe1})
	var peers string
	bencode.Unmarshal(rep.Peers, &peers)
	if peers != want || rep.Complete != 1 || rep.Incomplete != 1 {
		t.Fatalf("second announce: peers %x, want %x; %+v", peers, want, rep)
	}
	if rep.ExternalIP != "\xc6\x33\x64\x09" {
		t.Fatalf("untrusted peer's external ip %x", rep.ExternalIP)
	}
	// Lower-case escapes and raw ';' / '+' bytes decode to the same info-hash.
	raw := strings.ToLower(esc(ih[:1])) + ";+" + esc(ih[3:])
	q := fmt.Sprintf("/scrape?info_hash=%s", raw)
	r := httptest.NewRequest("GET", "http://tracker"+q, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var sc struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if err := bencode.Unmarshal(w.Body.Bytes(), &sc); err != nil {
		t.Fatal(err)
	}
	if f, ok := sc.Files[string(ih)]; !ok || f.Complete != 1 || f.Incomplete != 1 {
		t.Fatalf("scrape with raw ;/+ and lower-case escapes: %q", w.Body.Bytes())
	}
}

func TestAnnounceDictAndIPv6(t *testing.T) {
	h := newHandler(t, withPeerIDs(t))
	ih := []byte("01234567890123456789")
	get(t, h, "[2001:db8::5]:4000", ann(ih, []byte("-LT2080-aaaaaaaaaaaa"), 7000, "5"), nil)
	get(t, h, "10.0.0.1:4000", ann(ih, []byte("-LT2080-bbbbbbbbbbbb"), 7001, "5"), nil)
	rep := get(t, h, "10.0.0.2:4000", ann(ih, []byte("-LT2080-cccccccccccc"), 7002, "5&compact=1"), nil)
	if len(rep.Peers6) != 18 || netip.AddrFrom16([16]byte([]byte(rep.Peers6[:16]))).String() != "2001:db8::5" {
		t.Fatalf("peers6 %x", rep.Peers6)
	}
	rep = get(t, h, "10.0.0.2:4000", ann(ih, []byte("-LT2080-cccccccccccc"), 7002, "5&compact=0"), nil)
	var list []map[string]any
	if err := bencode.Unmarshal(rep.Peers, &list); err != nil {
		t.Fatalf("dict peers: %v", err)
	}
	got := map[string]bool{}
	for _, p := range list {
		got[fmt.Sprintf("%v|%v|%v", p["ip"], p["port"], p["peer id"])] = true
	}
	for _, w := range []string{"2001:db8::5|7000|-LT2080-aaaaaaaaaaaa", "10.0.0.1|7001|-LT2080-bbbbbbbbbbbb"} {
		if !got[w] {
			t.Errorf("dict peers %v lack %s", got, w)
		}
	}
	rep = get(t, h, "10.0.0.2:4000", ann(ih, []byte("-LT2080-cccccccccccc"), 7002, "5&compact=0&no_peer_id=1"), nil)
	list = nil
	if err := bencode.Unmarshal(rep.Peers, &list); err != nil || len(list) != 2 {
		t.Fatalf("no_peer_id dict peers: %d, %v", len(list), err)
	}
	for _, p := range list {
		if _, ok := p["peer id"]; ok {
			t.Fatal("no_peer_id=1 reply has peer ids")
		}
	}
}

func TestIPOverride(t *testing.T) {
	ih := []byte("01234567890123456789")
	for _, tc := range []struct {
		mode   int
		remote string
		want   string
	}{
		{1, "10.0.0.1:1", "192.0.2.55"},       // local client: ip= honoured
		{1, "198.51.100.1:1", "198.51.100.1"}, // public client: ignored
		{0, "198.51.100.1:1", "192.0.2.55"},   // 0: always
		{2, "10.0.0.1:1", "10.0.0.1"},         // 2: only with NAT checking (off here)
	} {
		h := newHandler(t, func(c *Config) { c.OnlyLocalOverrideIP = tc.mode })
		get(t, h, tc.remote, ann(ih, []byte("-LT2080-aaaaaaaaaaaa"), 7000, "5&ip=192.0.2.55"), nil)
		rep := get(t, h, "10.9.9.9:1", ann(ih, []byte("-LT2080-bbbbbbbbbbbb"), 7001, "5"), nil)
		var peers string
		bencode.Unmarshal(rep.Peers, &peers)
		if len(peers) != 6 || netip.AddrFrom4([4]byte([]byte(peers[:4]))).String() != tc.want {
			t.Errorf("mode %d from %s: peer %x, want %s", tc.mode, tc.remote, peers, tc.want)
		}
	}
}

func TestBadAnnounces(t *testing.T) {
	h := newHandler(t, nil)
	ih := esc([]byte("01234567890123456789"))
	id := esc([]byte("-LT2080-aaaaaaaaaaaa"))
	long := strings.Repeat("x", 70<<10)
	for _, tc := range []struct{ q, want string }{
		{"peer_id=" + id + "&port=1&left=0", "missing info_hash"},
		{"info_hash=abc&peer_id=" + id + "&port=1&left=0", "invalid info_hash"},
		{"info_hash=" + ih + "&port=1&left=0", "missing peer_id"},
		{"info_hash=" + ih + "&peer_id=short&port=1&left=0", "invalid peer_id"},
		{"info_hash=" + ih + "&peer_id=" + id + "&left=0", "missing port"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=70000&left=0", "invalid port"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=0&left=0", "invalid port"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=1", "missing left"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=1&left=-5", "invalid left"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=1&left=0&event=bogus", "unknown event"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=1&left=0&numwant=x", "invalid numwant"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=1&left=0&ip=not.an.ip", "not an IP address"},
		{"info_hash=%zz" + ih[3:] + "&peer_id=" + id + "&port=1&left=0", "invalid info_hash"},
		{"info_hash=" + ih + "&info_hash=" + ih + "&peer_id=" + id + "&port=1&left=0", "info_hash given twice"},
		{"info_hash=" + ih + "&peer_id=" + id + "&port=1&left=0&x=" + long, "request too long"},
	} {
		rep := get(t, h, "127.0.0.1:1", "/announce?"+tc.q, nil)
		if !strings.Contains(rep.Failure, tc.want) {
			t.Errorf("%.80s: failure %q, want it to mention %q", tc.q, rep.Failure, tc.want)
		}
	}
}

func TestScrapeModesAndLimits(t *testing.T) {
	h := newHandler(t, func(c *Config) {
		c.Name = func(ih bittorrent.InfoHash) (string, bool) { return "big.iso", ih[0] == 'a' }
	})
	var ihs []string
	for i := range 200 {
		ih := fmt.Sprintf("%c%019d", 'a'+i%2, i)
		ihs = append(ihs, "info_hash="+url.QueryEscape(ih))
		get(t, h, "127.0.0.1:1", ann([]byte(ih), []byte("-LT2080-aaaaaaaaaaaa"), 7000, "0"), nil)
	}
	r := httptest.NewRequest("GET", "http://tracker/scrape?"+strings.Join(ihs, "&"), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var sc struct {
		Files map[string]map[string]any `bencode:"files"`
	}
	if err := bencode.Unmarshal(w.Body.Bytes(), &sc); err != nil || len(sc.Files) != 200 {
		t.Fatalf("200-hash scrape: %d files, %v", len(sc.Files), err)
	}
	named := 0
	for ih, f := range sc.Files {
		if f["complete"] != int64(1) {
			t.Fatalf("%q: %v", ih, f)
		}
		if f["name"] == "big.iso" {
			named++
		}
	}
	if named != 100 {
		t.Errorf("%d files named, want 100", named)
	}
	// Full scrape in full mode; refused in specific and off modes.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "http://tracker/scrape", nil))
	if err := bencode.Unmarshal(w.Body.Bytes(), &sc); err != nil || len(sc.Files) != 200 {
		t.Fatalf("full scrape: %d files, %v", len(sc.Files), err)
	}
	for mode, want := range map[string]string{ScrapeSpecific: "full scrape is disabled", ScrapeOff: "scrape is disabled"} {
		hm := newHandler(t, func(c *Config) { c.Scrape = mode })
		rep := get(t, hm, "127.0.0.1:1", "/scrape", nil)
		if !strings.Contains(rep.Failure, want) {
			t.Errorf("mode %s: %q", mode, rep.Failure)
		}
	}
	hm := newHandler(t, func(c *Config) { c.MaxScrapeHashes = 10 })
	rep := get(t, hm, "127.0.0.1:1", "/scrape?"+strings.Join(ihs[:11], "&"), nil)
	if !strings.Contains(rep.Failure, "more than 10") {
		t.Errorf("11 hashes with a cap of 10: %q", rep.Failure)
	}
}

func TestPrefixAndRoutes(t *testing.T) {
	stats := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "stats at "+r.URL.Path) })
	h := newHandler(t, func(c *Config) { c.Stats = stats })
	for _, tc := range []struct {
		fcgi         bool
		remote, path string
		prefix, want string
		code         int
	}{
		{false, "127.0.0.1:1", "/", "/tracker", "stats at /", 200},
		{false, "127.0.0.1:1", "/stats", "", "stats at /stats", 200},
		{true, "10.1.1.1:1", "/tracker/stats", "/tracker", "stats at /stats", 200},
		{true, "10.1.1.1:1", "/tracker/", "/tracker", "stats at /", 200},
		{false, "10.1.1.1:1", "/tracker/stats", "/tracker", "", 404}, // untrusted: no stripping
		// Over HTTP the proxy has stripped its X-Forwarded-Prefix already: not again.
		{false, "127.0.0.1:1", "/tracker/stats", "/tracker", "", 404},
		{false, "127.0.0.1:1", "/stats", "/tracker", "stats at /stats", 200},
		{false, "127.0.0.1:1", "/trackerx/stats", "/tracker", "", 404},
		{false, "127.0.0.1:1", "/healthz", "", "ok\n", 200},
		{false, "127.0.0.1:1", "/nope", "", "", 404},
	} {
		r := httptest.NewRequest("GET", "http://tracker"+tc.path, nil)
		r.RemoteAddr = tc.remote
		if tc.prefix != "" {
			r.Header.Set("X-Forwarded-Prefix", tc.prefix)
		}
		w := httptest.NewRecorder()
		if tc.fcgi {
			h.FastCGI().ServeHTTP(w, r)
		} else {
			h.ServeHTTP(w, r)
		}
		if w.Code != tc.code || (tc.want != "" && w.Body.String() != tc.want) {
			t.Errorf("%+v: %d %q", tc, w.Code, w.Body.String())
		}
	}
	// --prefix works without any header.
	hp := newHandler(t, func(c *Config) { c.Stats = stats; c.Prefix = "/tracker/" })
	w := httptest.NewRecorder()
	hp.ServeHTTP(w, httptest.NewRequest("GET", "http://tracker/tracker/stats", nil))
	if w.Body.String() != "stats at /stats" {
		t.Errorf("--prefix: %q", w.Body.String())
	}
}

// TestNonCanonicalPaths: every other spelling of a route answers 404, over HTTP and FastCGI,
// and the prefix is stripped once (/tracker/tracker/metrics is not /metrics).
func TestNonCanonicalPaths(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "METRICS") })
	reg := prometheus.NewRegistry()
	h := newHandler(t, func(c *Config) { c.Metrics = metrics; c.Stats = metrics; c.Registerer = reg })
	serve := func(fcgi bool, target, prefix string) (int, string) {
		r := httptest.NewRequest("GET", "http://tracker"+target, nil)
		r.RemoteAddr = "127.0.0.1:1"
		if prefix != "" {
			r.Header.Set("X-Forwarded-Prefix", prefix)
		}
		w := httptest.NewRecorder()
		if fcgi {
			h.FastCGI().ServeHTTP(w, r)
		} else {
			h.ServeHTTP(w, r)
		}
		return w.Code, w.Body.String()
	}
	refused := 0
	for _, fcgi := range []bool{false, true} {
		base, prefix := "", ""
		if fcgi {
			base, prefix = "/tracker", "/tracker"
		}
		if code, body := serve(fcgi, base+"/metrics", prefix); code != 200 || body != "METRICS" {
			t.Fatalf("fcgi=%v %s/metrics: %d %q", fcgi, base, code, body)
		}
		for _, target := range []string{
			"/tracker/metrics", "/tracker/tracker/metrics", "//metrics", "/./metrics", "/x/../metrics",
			"/%6detrics", "/metric%73", "/%2e/metrics", "/metrics/.", "/metrics//", "/.//metrics",
		} {
			code, body := serve(fcgi, base+target, prefix)
			if code != http.StatusNotFound || body == "METRICS" {
				t.Errorf("fcgi=%v GET %s: %d %q, want 404", fcgi, base+target, code, body)
			}
			if target != "/tracker/metrics" && target != "/tracker/tracker/metrics" {
				refused++
			}
		}
	}
	var m dto.Metric
	if err := h.nonCanonical.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); int(got) != refused {
		t.Errorf("webswarm_tracker_http_noncanonical_paths_total = %v, want %d", got, refused)
	}
	// A trailing slash is canonical: the stats page's own URL under a mount.
	if code, _ := serve(true, "/tracker/", "/tracker"); code != 200 {
		t.Errorf("FastCGI /tracker/: %d", code)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHandler(t, func(c *Config) { c.RateLimit = announce.NewRateLimiter(0.0001, 2, 100) })
	q := ann([]byte("01234567890123456789"), []byte("-LT2080-aaaaaaaaaaaa"), 7000, "0")
	for i := range 2 {
		if rep := get(t, h, "10.0.0.1:1", q, nil); rep.Failure != "" {
			t.Fatalf("announce %d refused: %s", i, rep.Failure)
		}
	}
	if rep := get(t, h, "10.0.0.1:1", q, nil); !strings.Contains(rep.Failure, "too many announces") {
		t.Fatalf("third announce: %q", rep.Failure)
	}
	q = ann([]byte("01234567890123456789"), []byte("-LT2080-bbbbbbbbbbbb"), 7000, "0")
	if rep := get(t, h, "10.0.0.2:1", q, nil); rep.Failure != "" {
		t.Fatalf("other client refused: %s", rep.Failure)
	}
}

func TestRemoteAddrForms(t *testing.T) {
	for in, want := range map[string]string{"1.2.3.4:5": "1.2.3.4", "[::1]:80": "::1", "1.2.3.4": "1.2.3.4", "[::ffff:1.2.3.4]:1": "1.2.3.4"} {
		r := &http.Request{RemoteAddr: in}
		if got := remoteAddr(r); got.String() != want {
			t.Errorf("remoteAddr(%q) = %v, want %s", in, got, want)
		}
	}
}

// BenchmarkAnnounceHandler measures the handler for a re-announce (numwant 50) in a
// population of 1,000 torrents × 100 peers, without the network.
func BenchmarkAnnounceHandler(b *testing.B) {
	st, _ := swarm.NewMemory(swarm.Config{})
	defer st.Close()
	tr, _ := announce.New(announce.Config{}, st, nil)
	h, _ := New(Config{Tracker: tr})
	var urls []string
	for i := range 100_000 {
		ih := fmt.Sprintf("%020d", i%1000)
		id := fmt.Sprintf("-TB0001-%012d", i)
		q := fmt.Sprintf("/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50", esc([]byte(ih)), esc([]byte(id)), 1024+i/1000, i%5)
		r := httptest.NewRequest("GET", q, nil)
		h.ServeHTTP(discard{}, r)
		if i%97 == 0 {
			urls = append(urls, q)
		}
	}
	reqs := make([]*http.Request, len(urls))
	for i, u := range urls {
		reqs[i] = httptest.NewRequest("GET", u, nil)
	}
	w := discard{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.ServeHTTP(w, reqs[i%len(reqs)])
		i++
	}
}

type discard struct{}

var discardHeader = http.Header{}

func (discard) Header() http.Header         { return discardHeader }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// fakeWS records the WebSocket announces handed to it.
type fakeWS struct{ clients []netip.Addr }

func (f *fakeWS) ServeWebSocket(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	f.clients = append(f.clients, client)
	w.WriteHeader(http.StatusSwitchingProtocols)
}

// An announce with "Upgrade: websocket" goes to Config.WebSocket with the client address the
// trusted proxy names; over FastCGI, or without a WebSocket handler, it is answered 400; other
// routes and other upgrades are served as before.
func TestWebSocketRoute(t *testing.T) {
	ws := &fakeWS{}
	h := newHandler(t, func(c *Config) {
		c.WebSocket = ws
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	serve := func(handler http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "127.0.0.1:5000"
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	up := map[string]string{"Upgrade": "WebSocket", "Connection": "Upgrade", "X-Real-IP": "198.51.100.7"}
	if w := serve(h, "/announce", up); w.Code != http.StatusSwitchingProtocols || len(ws.clients) != 1 || ws.clients[0] != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("WebSocket announce: %d, clients %v", w.Code, ws.clients)
	}
	if w := serve(h.FastCGI(), "/announce", up); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "HTTP port") {
		t.Errorf("over FastCGI: %d %q", w.Code, w.Body)
	}
	if w := serve(h, "/scrape", up); w.Code != http.StatusOK || len(ws.clients) != 1 {
		t.Errorf("scrape with an upgrade: %d", w.Code)
	}
	if w := serve(h, "/announce", map[string]string{"Upgrade": "h2c"}); w.Code != http.StatusOK || len(ws.clients) != 1 {
		t.Errorf("announce with another upgrade: %d", w.Code)
	}
	plain := newHandler(t, nil)
	if w := serve(plain, "/announce", up); w.Code != http.StatusBadRequest {
		t.Errorf("without a WebSocket handler: %d", w.Code)
	}
}
