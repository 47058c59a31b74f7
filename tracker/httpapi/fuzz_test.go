package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// FuzzAnnounce feeds arbitrary queries to the announce and scrape paths: every reply must be
// a well-formed bencoded dictionary (a peer list or a failure reason), never a panic.
func FuzzAnnounce(f *testing.F) {
	for _, s := range []string{
		"info_hash=%00%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13&peer_id=-TR3000-aaaaaaaaaaaa&port=6881&left=0&compact=1",
		"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=;+;+;+;+;+;+;+;+;+;+&port=1&left=5&event=started&numwant=-1&key=%ff%00",
		"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=65535&left=0&ip=::1&compact=0&no_peer_id=1",
		"info_hash=%zz&port=&left=",
		"&&&=&=%",
		"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&left=0&ipv6=[2001:db8::1]:5&event=stopped",
	} {
		f.Add(s)
	}
	h := newFuzzHandler(f)
	f.Fuzz(func(t *testing.T, q string) {
		if strings.ContainsAny(q, " #\r\n") {
			return // not a query a request line can carry
		}
		for _, path := range []string{"/announce?", "/scrape?"} {
			r := httptest.NewRequest("GET", "http://tracker"+path+"x=1", nil)
			r.URL.RawQuery = q
			r.RemoteAddr = "10.0.0.1:1"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var v map[string]any
			if err := bencode.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s%q: reply %q is not bencode: %v", path, q, w.Body.Bytes(), err)
			}
			if _, ok := v["failure reason"]; !ok {
				if _, ok := v["peers"]; !ok && path == "/announce?" {
					t.Fatalf("announce %q: neither peers nor failure reason: %q", q, w.Body.Bytes())
				}
			}
		}
	})
}

func newFuzzHandler(f *testing.F) *Handler { return newHandlerTB(f) }
