package benc

import (
	"bytes"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

func TestAgainstLibrary(t *testing.T) {
	var b []byte
	b = append(b, 'd')
	b = KeyInt(b, "complete", 5)
	b = KeyBytes(b, "key\x00", []byte{0, 1, 2, ':'})
	b = String(b, "neg")
	b = Int(b, -42)
	b = String(b, "u")
	b = Uint(b, 1<<63)
	b = append(b, 'e')
	var got map[string]any
	if err := bencode.Unmarshal(b, &got); err != nil {
		t.Fatalf("library cannot read %q: %v", b, err)
	}
	want := map[string]any{"complete": int64(5), "key\x00": "\x00\x01\x02:", "neg": int64(-42)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q = %#v, want %#v", k, got[k], v)
		}
	}
	lib, err := bencode.Marshal(map[string]any{"complete": 5, "key\x00": "\x00\x01\x02:", "neg": -42})
	if err != nil {
		t.Fatal(err)
	}
	var ours []byte
	ours = append(ours, 'd')
	ours = KeyInt(ours, "complete", 5)
	ours = KeyBytes(ours, "key\x00", []byte{0, 1, 2, ':'})
	ours = KeyInt(ours, "neg", -42)
	ours = append(ours, 'e')
	if !bytes.Equal(lib, ours) {
		t.Errorf("ours %q, library %q", ours, lib)
	}
	if f := Failure(nil, "bad"); string(f) != "d14:failure reason3:bade" {
		t.Errorf("Failure = %q", f)
	}
}

// BenchmarkReply compares building a typical announce reply (50 compact peers) with this
// package and with the library encoder.
func BenchmarkReply(b *testing.B) {
	peers := bytes.Repeat([]byte{127, 0, 0, 1, 0x1a, 0xe1}, 50)
	b.Run("benc", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = buf[:0]
			buf = append(buf, 'd')
			buf = KeyInt(buf, "complete", 20)
			buf = KeyInt(buf, "downloaded", 7)
			buf = KeyInt(buf, "incomplete", 80)
			buf = KeyInt(buf, "interval", 1800)
			buf = KeyInt(buf, "min interval", 900)
			buf = KeyBytes(buf, "peers", peers)
			buf = append(buf, 'e')
		}
	})
	b.Run("anacrolix", func(b *testing.B) {
		b.ReportAllocs()
		type reply struct {
			Complete    int    `bencode:"complete"`
			Downloaded  int    `bencode:"downloaded"`
			Incomplete  int    `bencode:"incomplete"`
			Interval    int    `bencode:"interval"`
			MinInterval int    `bencode:"min interval"`
			Peers       []byte `bencode:"peers"`
		}
		for b.Loop() {
			if _, err := bencode.Marshal(reply{20, 7, 80, 1800, 900, peers}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
