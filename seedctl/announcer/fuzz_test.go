package announcer

import (
	"strings"
	"testing"
)

// FuzzParseHTTPReply: no reply a tracker can send makes the parser panic, and whatever it
// accepts yields usable peers and bounded intervals.
func FuzzParseHTTPReply(f *testing.F) {
	for _, s := range []string{
		"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
		"d5:peersld2:ip9:127.0.0.14:porti1eeee",
		"d5:peersli1eee",
		"d6:peers618:" + strings.Repeat("\x01", 18) + "e",
		"d14:failure reason3:no!e",
		"d8:intervali-1e12:min intervali99999999999999999ee",
		"d5:peersd1:ai1eee",
		"l",
		"",
	} {
		f.Add([]byte(s))
	}
	var self [20]byte
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseHTTPReply(body, self)
		if err != nil {
			return
		}
		for _, p := range r.peers {
			if !p.Addr().IsValid() {
				t.Fatalf("invalid peer %v", p)
			}
		}
		if r.interval < 0 || r.interval > maxInterval || r.minInterval < 0 || r.minInterval > maxInterval {
			t.Fatalf("intervals %v, %v", r.interval, r.minInterval)
		}
	})
}
