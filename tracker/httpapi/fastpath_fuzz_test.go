package httpapi

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// headSeeds are request heads for both fuzz tests: ones the fast path answers and ones it
// must leave to net/http.
var headSeeds = []string{
	"GET /announce?info_hash=%00%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13&peer_id=-TR3000-aaaaaaaaaaaa&port=6881&left=0 HTTP/1.1\r\nHost: t\r\nUser-Agent: Transmission/3.00\r\nConnection: close\r\n\r\n",
	"GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n\r\n",
	"GET /tracker/scrape HTTP/1.1\r\nhost: t\r\nX-Forwarded-Prefix: /tracker/\r\nX-Real-IP: ::1\r\n\r\n",
	"GET /announce?a;b+c HTTP/1.1\r\nHost: [::1]:80\r\nReferer: x\r\n\r\nGET /scrape HTTP/1.1\r\nHost: t\r\n\r\n",
	"HEAD /announce HTTP/1.1\r\nHost: t\r\n\r\n",
	"GET /announce HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET /announce HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
	"GET /announce HTTP/1.1\nHost: t\n\n",
	"GET http://t/announce HTTP/1.1\r\nHost: t\r\n\r\n",
	"GET /%61nnounce HTTP/1.1\r\nHost: t\r\n\r\n",
	"GET /announce HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n",
}

// FuzzParseHead checks parseHead against net/http's own request reader: whatever the fast
// path accepts, net/http reads the same way. (ReadRequest drops the Host header; the rules
// about it are checked over sockets, in TestFastPathHandsOver and FuzzFastPath.)
func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var hd head
		if !parseHead(s, &hd) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			t.Fatalf("parseHead accepts %q; net/http refuses it: %v", s, err)
		}
		first := func(k string) string {
			if v := req.Header[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		switch {
		case req.Method != "GET", req.RequestURI != hd.uri, req.Proto != hd.proto,
			req.URL.Path != hd.path, req.URL.RawQuery != hd.query:
			t.Fatalf("%q: request line read as %s %q %s (path %q query %q), fast path %+v", s, req.Method, req.RequestURI, req.Proto, req.URL.Path, req.URL.RawQuery, hd)
		case req.Close != hd.close:
			t.Fatalf("%q: close %v, fast path %v", s, req.Close, hd.close)
		case lastValue(req.Header["X-Real-Ip"]) != hd.realIP, lastValue(req.Header["X-Forwarded-For"]) != hd.xff,
			first("X-Forwarded-Prefix") != hd.prefix, req.UserAgent() != hd.agent, req.Referer() != hd.ref:
			t.Fatalf("%q: headers %q, fast path %+v", s, req.Header, hd)
		case req.ContentLength != 0, len(req.TransferEncoding) != 0, req.Header.Get("Expect") != "":
			t.Fatalf("%q: a request with a body on the fast path", s)
		}
		for k, vs := range req.Header {
			for _, v := range vs {
				if !validName(k) || !validValue(v) {
					t.Fatalf("%q: header %q: %q, which net/http's server refuses", s, k, v)
				}
			}
		}
	})
}

// FuzzFastPath sends arbitrary bytes to the fast path and to net/http alone: the answers
// must be the same (the fast path answers like net/http, or hands the connection over).
func FuzzFastPath(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	// The full scrape is cached for a second on each side: a scrape of everything could
	// differ in time, not in logic, so it is off here.
	fast, plain := newPair(f, pairOpts{mod: func(c *Config) { c.Scrape = ScrapeSpecific }})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 4000 {
			// net/http reads 4 KiB at a time: a longer input may stay unread in the kernel
			// when it closes, and the reset that causes could race with reading its reply.
			return
		}
		compare(t, fast, plain, "fuzz", string(raw))
	})
}
