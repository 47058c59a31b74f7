package announcer

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseHTTPReply parses a compact reply of 50 IPv4 and 50 IPv6 peers.
func BenchmarkParseHTTPReply(b *testing.B) {
	v4 := strings.Repeat("\x7f\x00\x00\x01\x1a\xe1", 50)
	v6 := strings.Repeat("\x20\x01\x0d\xb8"+strings.Repeat("\x00", 11)+"\x01\x1a\xe1", 50)
	body := []byte(fmt.Sprintf("d8:completei10e10:incompletei40e8:intervali1800e12:min intervali900e5:peers%d:%s6:peers6%d:%se",
		len(v4), v4, len(v6), v6))
	var self [20]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseHTTPReply(body, self); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnnounceURL builds an announce URL with binary IDs.
func BenchmarkAnnounceURL(b *testing.B) {
	a, err := New(testConfig([][]string{{"http://t.example/announce?pk=1"}}, hash("\xff\x00bench"), 1))
	if err != nil {
		b.Fatal(err)
	}
	r := &request{event: evStarted, numWant: 50, progress: Progress{Left: 1 << 30}}
	b.ReportAllocs()
	for b.Loop() {
		_ = a.announceURL("http://t.example/announce?pk=1", r)
	}
}
