package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// side is one tracker served over a real loopback socket, by the fast path or by net/http
// alone; a pair of them, configured alike and sent the same bytes, must answer alike.
type side struct {
	addr string
	fs   *Server // nil: net/http alone
	reg  *prometheus.Registry
	log  *AccessLog
	path string // the access log file
}

// pairOpts configures both sides of a pair.
type pairOpts struct {
	mod      func(*Config)
	hs       func(*http.Server)
	noInline bool // the fast side serves every connection on its own goroutine
}

func newSide(t testing.TB, fast bool, o pairOpts) *side {
	t.Helper()
	st, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	tr, err := announce.New(announce.Config{}, st, announce.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	sd := &side{reg: reg, path: t.TempDir() + "/access.log"}
	if sd.log, err = OpenAccessLog(sd.path); err != nil {
		t.Fatal(err)
	}
	page := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s %q", name, r.Method, r.URL.Path, r.URL.RawQuery)
		})
	}
	cfg := Config{
		Tracker:             tr,
		TrustedProxies:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		OnlyLocalOverrideIP: 1,
		Stats:               page("stats"),
		StatsJSON:           page("json"),
		Metrics:             page("metrics"),
		AccessLog:           sd.log,
		Latency:             NewLatency(reg),
		WriteTimeout:        5 * time.Second,
	}
	if o.mod != nil {
		o.mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// As tracker/server.go configures it.
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    72 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if o.hs != nil {
		o.hs(hs)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sd.addr = l.Addr().String()
	done := make(chan error, 1)
	if fast {
		sd.fs = NewServer(h, hs)
		sd.fs.noInline = o.noInline
		go func() { done <- sd.fs.Serve(l) }()
	} else {
		go func() { done <- hs.Serve(l) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if fast {
			err = sd.fs.Shutdown(ctx)
		} else {
			err = hs.Shutdown(ctx)
		}
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		sd.log.Close()
		tr.Close()
		st.Close()
	})
	return sd
}

func newPair(t testing.TB, o pairOpts) (fast, plain *side) {
	t.Helper()
	return newSide(t, true, o), newSide(t, false, o)
}

// exchange sends raw on a new connection, half-closes it and returns all the server writes
// until it closes the connection.
func exchange(t testing.TB, addr, raw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, raw)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	out, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%.80q: no close within 10 s; read %q", raw, out)
	}
	<-werr // a write may fail once the server has closed: that is its answer
	return string(out)
}

// response is one reply from a byte stream, normalised for comparison.
type response struct {
	status string
	header string // every header but Date, in the order sent
	date   bool
	body   string
}

// responses splits a server's output into replies; methods names each request's method
// (GET when missing), so that HEAD replies are read without a body.
func responses(t testing.TB, out string, methods ...string) []response {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(out))
	var rs []response
	for i := 0; ; i++ {
		if _, err := br.Peek(1); err == io.EOF {
			return rs
		}
		method := "GET"
		if i < len(methods) {
			method = methods[i]
		}
		// The header block, kept in order.
		var hb strings.Builder
		status, err := br.ReadString('\n')
		if err != nil {
			return append(rs, response{status: "unparsed", body: status})
		}
		r := response{status: strings.TrimRight(status, "\r\n")}
		var clen int64 = -1
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return append(rs, response{status: "unparsed", body: out})
			}
			if line == "\r\n" {
				break
			}
			if strings.HasPrefix(line, "Date: ") {
				r.date = true
				continue
			}
			fmt.Sscanf(line, "Content-Length: %d", &clen)
			hb.WriteString(line)
		}
		r.header = hb.String()
		switch {
		case method == "HEAD" || strings.Contains(r.status, " 100 "):
		case clen >= 0:
			b := make([]byte, clen)
			n, _ := io.ReadFull(br, b)
			r.body = normBody(string(b[:n]))
		default:
			b, _ := io.ReadAll(br)
			r.body = normBody(string(b))
		}
		rs = append(rs, r)
	}
}

// normBody sorts the peer lists of a bencoded announce reply: peers are chosen and kept in
// random order, the rest of a reply is deterministic.
func normBody(b string) string {
	var v map[string]any
	if err := bencode.Unmarshal([]byte(b), &v); err != nil {
		return b
	}
	sortChunks := func(k string, n int) {
		if s, ok := v[k].(string); ok && len(s)%n == 0 {
			var cs []string
			for i := 0; i < len(s); i += n {
				cs = append(cs, s[i:i+n])
			}
			slices.Sort(cs)
			v[k] = strings.Join(cs, "")
		}
	}
	sortChunks("peers", 6)
	sortChunks("peers6", 18)
	if l, ok := v["peers"].([]any); ok {
		slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	}
	nb, err := bencode.Marshal(v)
	if err != nil {
		return b
	}
	return string(nb)
}

// compare sends raw to both sides and fails unless they answer alike. It returns the fast
// side's replies and how many connections the fast path handed to net/http.
func compare(t testing.TB, fast, plain *side, name, raw string, methods ...string) ([]response, int64) {
	t.Helper()
	before := fast.fs.handoffs.Load()
	fo := exchange(t, fast.addr, raw)
	po := exchange(t, plain.addr, raw)
	fr, pr := responses(t, fo, methods...), responses(t, po, methods...)
	if !slices.Equal(fr, pr) {
		t.Errorf("%s: fast path and net/http differ\nrequest  %.300q\nfast     %.600q\nnet/http %.600q", name, raw, fo, po)
	}
	return fr, fast.fs.handoffs.Load() - before
}

// rawGet builds a GET request head with a Host and the given header lines.
func rawGet(target string, headers ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: tracker.test\r\n" + strings.Join(append(headers, ""), "\r\n") + "\r\n"
}

var (
	ihA = []byte("\x00;+%/\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\xff")
	ihB = []byte("01234567890123456789")
)

func annQ(ih []byte, id string, port int, extra string) string {
	return fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%s", esc(ih), esc([]byte(id)), port, extra)
}

func scrapeQ(n int) string {
	var qs []string
	for i := range n {
		qs = append(qs, "info_hash="+esc([]byte(fmt.Sprintf("%020d", i))))
	}
	return strings.Join(qs, "&")
}

// TestFastPathAnswersAsNetHTTP sends the same requests to the fast path and to net/http alone
// and compares every reply: status line, headers in order, and body (peer lists sorted).
func TestFastPathAnswersAsNetHTTP(t *testing.T) {
	fast, plain := newPair(t, pairOpts{})
	target := func(id string, port int, extra string) string {
		return "/announce?" + annQ(ihA, id, port, extra)
	}
	long := strings.Repeat("x", 66<<10) // over MaxQuery (64 KiB), under MaxHeaderBytes (72 KiB)
	for _, tc := range []struct {
		name, raw string
		replies   int
		handed    int64 // connections the fast path hands to net/http
	}{
		{"compact, from X-Forwarded-For", rawGet(target("-TR3000-aaaaaaaaaaaa", 6881, "100&compact=1"), "X-Forwarded-For: 6.6.6.6, 203.0.113.7"), 1, 0},
		{"dict with peer ids", rawGet(target("-TR3000-bbbbbbbbbbbb", 6882, "0&compact=0")), 1, 0},
		{"dict without peer ids", rawGet(target("-TR3000-bbbbbbbbbbbb", 6882, "0&compact=0&no_peer_id=1")), 1, 0},
		{"IPv6 client via X-Real-IP", rawGet(target("-TR3000-cccccccccccc", 6883, "5"), "X-Real-IP: 2001:db8::7", "X-Forwarded-For: 1.2.3.4"), 1, 0},
		{"IPv6 peers6 list", rawGet(target("-TR3000-dddddddddddd", 6884, "5"), "x-real-ip:  192.0.2.9  "), 1, 0},
		{"ip= override from a local client", rawGet(target("-TR3000-eeeeeeeeeeee", 6885, "5&ip=10.1.2.3")), 1, 0},
		{"raw ; and + in binary values, lower-case escapes", rawGet("/announce?" + strings.ToLower(annQ(ihA, "-TR3000-;+;+aaaaaaaa", 6886, "1"))), 1, 0},
		{"raw ; + in peer_id unescaped", rawGet("/announce?info_hash=" + esc(ihB) + "&peer_id=-XX0000-;+;+;+;+;+;+&port=1&left=0"), 1, 0},
		{"missing info_hash", rawGet("/announce?peer_id=" + esc([]byte("-TR3000-aaaaaaaaaaaa")) + "&port=1&left=0"), 1, 0},
		{"bad port", rawGet(target("-TR3000-aaaaaaaaaaaa", 70000, "0")), 1, 0},
		{"unknown event", rawGet(target("-TR3000-aaaaaaaaaaaa", 1, "0&event=bogus")), 1, 0},
		{"bad escape", rawGet("/announce?info_hash=%zz&peer_id=x&port=1&left=0"), 1, 0},
		{"over-long query: failure reason", rawGet(target("-TR3000-aaaaaaaaaaaa", 1, "0&x="+long)), 1, 0},
		{"over-long query beyond the header limit", rawGet(target("-TR3000-aaaaaaaaaaaa", 1, "0&x="+long+long)), 1, 1},
		{"empty query", rawGet("/announce"), 1, 0},
		{"only ?", rawGet("/announce?"), 1, 0},
		{"# in the query", rawGet("/announce?info_hash=#&port=1"), 1, 0},
		{"event=completed then stopped", rawGet(target("-TR3000-ffffffffffff", 7000, "0&event=completed")) + rawGet(target("-TR3000-ffffffffffff", 7000, "0&event=stopped")), 2, 0},
		{"scrape one", rawGet("/scrape?info_hash=" + esc(ihA)), 1, 0},
		{"scrape 200 (a head over the 4 KiB buffer)", rawGet("/scrape?" + scrapeQ(200)), 1, 0},
		{"scrape 40 (Content-Length comes first above 2 KiB)", rawGet("/scrape?" + scrapeQ(40)), 1, 0},
		{"scrape 1001: too many", rawGet("/scrape?" + scrapeQ(1001)), 1, 0},
		{"scrape bad hash", rawGet("/scrape?info_hash=short"), 1, 0},
		{"HTTP/1.0 without Host", "GET /announce?" + annQ(ihB, "-CD0303-aaaaaaaaaaaa", 2706, "0") + " HTTP/1.0\r\nUser-Agent: Enhanced-CTorrent/dnh3.3.2\r\n\r\n", 1, 0},
		{"HTTP/1.0 keep-alive, twice", "GET /scrape HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /scrape?info_hash=" + esc(ihB) + " HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 2, 0},
		{"HTTP/1.0 keep-alive then a plain one", "GET /scrape?info_hash=" + esc(ihB) + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /scrape?info_hash=" + esc(ihB) + " HTTP/1.0\r\n\r\nGET /scrape HTTP/1.0\r\n\r\n", 2, 0},
		{"keep-alive then close", rawGet("/scrape?info_hash="+esc(ihB)) + rawGet("/scrape?info_hash="+esc(ihA), "Connection: close"), 2, 0},
		{"close then more (linger)", rawGet("/scrape?info_hash="+esc(ihB), "Connection: foo, CLOSE") + rawGet("/scrape?info_hash="+esc(ihA)), 1, 0},
		{"pipelined three", rawGet(target("-TR3000-gggggggggggg", 7001, "3")) + rawGet("/scrape?info_hash="+esc(ihA)) + rawGet(target("-TR3000-gggggggggggg", 7001, "0")), 3, 0},
		{"pipelined: fast then handed over", rawGet("/scrape?info_hash="+esc(ihA)) + rawGet("/stats") + rawGet("/scrape?info_hash="+esc(ihA)), 3, 1},
		{"headers net/http ignores", rawGet("/scrape", "Accept-Encoding: gzip", "Cookie: a=b", "X-Empty:", "Connection: keep-alive, TE", "TE: trailers", "Upgrade: h2c"), 1, 0},
		// A WebSocket announce goes to net/http, which hands it to Config.WebSocket (none here:
		// it answers 400 itself).
		{"websocket upgrade", rawGet("/announce?"+annQ(ihB, "-TR3000-hhhhhhhhhhhh", 1, "0"), "Upgrade: WebSocket", "Connection: Upgrade"), 1, 1},
		{"user agent and referer with obs-text", rawGet("/scrape", "User-Agent: qBittorrent/4.5.2 \xc3\xa9", "Referer: http://x/\t", "User-Agent: second"), 1, 0},
		// The proxy stripped its X-Forwarded-Prefix already: the tracker does not again.
		{"trusted X-Forwarded-Prefix, announce", rawGet("/tracker/announce?"+annQ(ihB, "-TR3000-hhhhhhhhhhhh", 1, "0"), "X-Forwarded-Prefix: /tracker/"), 1, 1},
		{"trusted X-Forwarded-Prefix, stripped", rawGet("/scrape?info_hash="+esc(ihB), "X-Forwarded-Prefix: /tracker/", "X-Forwarded-Prefix: /other"), 1, 0},
		{"prefix not at a boundary", rawGet("/trackerx/scrape", "X-Forwarded-Prefix: /tracker"), 1, 1},
	} {
		rs, handed := compare(t, fast, plain, tc.name, tc.raw)
		if len(rs) != tc.replies {
			t.Errorf("%s: %d replies, want %d: %+v", tc.name, len(rs), tc.replies, rs)
		}
		for _, r := range rs {
			if !strings.HasPrefix(r.status, "HTTP/1.") || r.body == "" {
				t.Errorf("%s: reply %+v", tc.name, r)
			}
		}
		if handed != tc.handed {
			t.Errorf("%s: %d hand-offs, want %d", tc.name, handed, tc.handed)
		}
	}
}

// TestFastPathConfigs runs requests whose answer depends on the Handler's configuration.
func TestFastPathConfigs(t *testing.T) {
	q := "/announce?" + annQ(ihB, "-TR3000-aaaaaaaaaaaa", 6881, "0")
	for _, tc := range []struct {
		name   string
		o      pairOpts
		raw    string
		handed int64
	}{
		{"untrusted proxy: X-Forwarded-For and X-Real-IP ignored", pairOpts{mod: func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }},
			rawGet(q, "X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.8"), 0},
		{"untrusted proxy: X-Forwarded-Prefix ignored", pairOpts{mod: func(c *Config) { c.TrustedProxies = nil }},
			rawGet("/tracker"+q, "X-Forwarded-Prefix: /tracker"), 1},
		{"--prefix", pairOpts{mod: func(c *Config) { c.Prefix = "/tracker/" }}, rawGet("/tracker" + q), 0},
		{"--prefix, a request outside it", pairOpts{mod: func(c *Config) { c.Prefix = "/tracker" }}, rawGet(q), 0},
		{"--prefix wins over X-Forwarded-Prefix", pairOpts{mod: func(c *Config) { c.Prefix = "/t" }}, rawGet("/t"+q, "X-Forwarded-Prefix: /u"), 0},
		{"scrape off", pairOpts{mod: func(c *Config) { c.Scrape = ScrapeOff }}, rawGet("/scrape?info_hash=" + esc(ihB)), 0},
		{"full scrape refused", pairOpts{mod: func(c *Config) { c.Scrape = ScrapeSpecific }}, rawGet("/scrape"), 0},
		{"full scrape", pairOpts{}, rawGet(q) + rawGet("/announce?"+annQ(ihA, "-TR3000-aaaaaaaaaaaa", 6881, "0")) + rawGet("/scrape"), 0},
		{"rate limit", pairOpts{mod: func(c *Config) { c.RateLimit = announce.NewRateLimiter(0.0001, 1, 10) }}, rawGet(q) + rawGet(q), 0},
		{"ReadHeaderTimeout falls back to ReadTimeout", pairOpts{hs: func(s *http.Server) { s.ReadHeaderTimeout, s.IdleTimeout, s.ReadTimeout = 0, 0, time.Second }}, rawGet(q), 0},
		// net/http allows 4 KiB over MaxHeaderBytes; the fast path buffers max(4 KiB, MaxHeaderBytes).
		{"small MaxHeaderBytes", pairOpts{hs: func(s *http.Server) { s.MaxHeaderBytes = 100 }}, rawGet(q), 0},
		{"small MaxHeaderBytes, a longer head", pairOpts{hs: func(s *http.Server) { s.MaxHeaderBytes = 100 }}, rawGet(q + "&x=" + strings.Repeat("x", 5000)), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast, plain := newPair(t, tc.o)
			rs, handed := compare(t, fast, plain, tc.name, tc.raw)
			if len(rs) == 0 || handed != tc.handed {
				t.Errorf("%d replies, %d hand-offs (want %d)", len(rs), handed, tc.handed)
			}
		})
	}
}

// TestFastPathHandsOver checks that what the fast path does not answer itself goes to
// net/http, and is answered exactly as net/http alone answers it.
func TestFastPathHandsOver(t *testing.T) {
	fast, plain := newPair(t, pairOpts{})
	q := "/announce?" + annQ(ihB, "-TR3000-aaaaaaaaaaaa", 6881, "0")
	for _, tc := range []struct {
		name, raw string
		methods   []string
	}{
		{"stats page", rawGet("/"), nil},
		{"stats", rawGet("/stats?sort=name"), nil},
		{"stats.json", rawGet("/stats.json"), nil},
		{"metrics", rawGet("/metrics"), nil},
		{"healthz", rawGet("/healthz"), nil},
		{"favicon (none)", rawGet("/favicon.ico"), nil},
		{"file (off)", rawGet("/file?info_hash=" + esc(ihB)), nil},
		{"not found", rawGet("/nope"), nil},
		{"trailing slash", rawGet("/announce/?x"), nil},
		{"HEAD /announce", "HEAD " + q + " HTTP/1.1\r\nHost: t\r\n\r\n", []string{"HEAD"}},
		{"POST /announce", "POST " + q + " HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", nil},
		{"lower-case method", "get " + q + " HTTP/1.1\r\nHost: t\r\n\r\n", nil},
		{"escaped path", rawGet("/%61nnounce?" + annQ(ihB, "-TR3000-aaaaaaaaaaaa", 6881, "0")), nil},
		{"escaped slash", rawGet("/announce%2F?x"), nil},
		{"absolute form", rawGet("http://tracker.test" + q), nil},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", nil},
		{"Expect: 100-continue", rawGet(q, "Expect: 100-continue"), nil},
		{"Expect: other", rawGet(q, "Expect: nonsense"), nil},
		{"chunked GET", rawGet(q, "Transfer-Encoding: chunked") + "3\r\nabc\r\n0\r\n\r\n", nil},
		{"GET with Content-Length", rawGet(q, "Content-Length: 2") + "ab", nil},
		{"GET with Content-Length 0", rawGet(q, "Content-Length: 0"), nil},
		{"HTTP/1.1 without Host", "GET " + q + " HTTP/1.1\r\n\r\n", nil},
		{"two Hosts", rawGet(q, "Host: other"), nil},
		{"odd Host", rawGet(q, "Host: a b"), nil},
		{"Host with a comma", "GET " + q + " HTTP/1.1\r\nHost: a,b\r\n\r\n", nil},
		{"HTTP/1.2", "GET " + q + " HTTP/1.2\r\nHost: t\r\n\r\n", nil},
		{"HTTP/2.0", "GET " + q + " HTTP/2.0\r\nHost: t\r\n\r\n", nil},
		{"HTTP/0.9", "GET " + q + "\r\n\r\n", nil},
		{"two spaces", "GET  " + q + " HTTP/1.1\r\nHost: t\r\n\r\n", nil},
		{"space in the target", "GET /announce?a b HTTP/1.1\r\nHost: t\r\n\r\n", nil},
		{"non-ASCII in the query", rawGet("/announce?info_hash=\xff\xfe"), nil},
		{"control byte in the query", rawGet("/announce?info_hash=\x01"), nil},
		{"bare LF", "GET " + q + " HTTP/1.1\nHost: t\n\n", nil},
		{"bare LF after CRLF lines", "GET " + q + " HTTP/1.1\r\nHost: t\n\r\n", nil},
		{"obs-fold", rawGet(q, "User-Agent: a", " folded"), nil},
		{"leading space before the first header", "GET " + q + " HTTP/1.1\r\n Host: t\r\n\r\n", nil},
		{"space before colon", rawGet(q, "X-Real-IP : 1.2.3.4"), nil},
		{"NUL in a header", rawGet(q, "User-Agent: a\x00b"), nil},
		{"NUL in the target", rawGet("/announce?a=\x00"), nil},
		{"CR inside a line", rawGet(q, "User-Agent: a\rb"), nil},
		{"header without colon", rawGet(q, "Nonsense"), nil},
		{"empty header name", rawGet(q, ": x"), nil},
		{"two Connection headers", rawGet(q, "Connection: keep-alive", "Connection: close"), nil},
		{"close and keep-alive", rawGet(q, "Connection: keep-alive, close"), nil},
		{"Connection with spaces in a token", rawGet(q, "Connection: foo close"), nil},
		{"empty line first", "\r\n" + rawGet(q), nil},
		{"cut off request line", "GET " + q, nil},
		{"cut off headers", "GET " + q + " HTTP/1.1\r\nHost: t\r\n", nil},
		{"TLS hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", nil},
		{"1 MB header", rawGet(q, "X-Big: "+strings.Repeat("b", 1<<20)), nil},
		{"1 MB request line", rawGet("/announce?" + strings.Repeat("a", 1<<20)), nil},
	} {
		before := fast.fs.handoffs.Load()
		rs, _ := compare(t, fast, plain, tc.name, tc.raw, tc.methods...)
		// A cut-off request (EOF inside a head) is handed over too: net/http answers it.
		if got := fast.fs.handoffs.Load() - before; got != 1 {
			t.Errorf("%s: %d hand-offs, want 1 (replies %+v)", tc.name, got, rs)
		}
	}
}
