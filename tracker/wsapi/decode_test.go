package wsapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// jsonRequest is the request as encoding/json decodes it: what request.decode must agree with.
type jsonRequest struct {
	Action   string          `json:"action"`
	InfoHash json.RawMessage `json:"info_hash"`
	PeerID   string          `json:"peer_id"`
	NumWant  *int            `json:"numwant"`
	Left     *float64        `json:"left"`
	Event    string          `json:"event"`
	Offers   []struct {
		Offer   json.RawMessage `json:"offer"`
		OfferID string          `json:"offer_id"`
	} `json:"offers"`
	ToPeerID string          `json:"to_peer_id"`
	OfferID  string          `json:"offer_id"`
	Answer   json.RawMessage `json:"answer"`
}

// jsonBinary20 is binary20 on a string encoding/json decoded.
func jsonBinary20(s string) ([20]byte, bool) {
	var b [20]byte
	i := 0
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError || i == 20 {
			return b, false
		}
		b[i] = byte(r)
		i++
	}
	return b, i == 20
}

// sameString reports whether raw (a raw JSON string or nil) reads as want, both as text and
// through binary20.
func sameString(t *testing.T, field string, raw []byte, want string) {
	t.Helper()
	var got string
	if raw != nil {
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: raw %q: %v", field, raw, err)
		}
	}
	if got != want {
		t.Fatalf("%s: got %q, encoding/json %q", field, got, want)
	}
	gb, gerr := binary20(raw, field)
	wb, wok := jsonBinary20(want)
	if (gerr == nil) != wok || wok && gb != wb {
		t.Fatalf("%s: binary20 %x %v, encoding/json's %x %v", field, gb, gerr, wb, wok)
	}
}

// checkDecode fails t unless request.decode and encoding/json agree on msg.
func checkDecode(t *testing.T, msg []byte) {
	t.Helper()
	var want jsonRequest
	werr := json.Unmarshal(msg, &want)
	var got request
	gerr := got.decode(msg)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: decode error %v, encoding/json's %v", msg, gerr, werr)
	}
	if werr != nil {
		return
	}
	if string(got.Action) != want.Action || string(got.Event) != want.Event {
		t.Fatalf("%q: action, event %q %q; encoding/json %q %q", msg, got.Action, got.Event, want.Action, want.Event)
	}
	if !bytes.Equal(got.InfoHash, want.InfoHash) || (got.InfoHash == nil) != (want.InfoHash == nil) {
		t.Fatalf("%q: info_hash %q, encoding/json %q", msg, got.InfoHash, want.InfoHash)
	}
	if !bytes.Equal(got.Answer, want.Answer) || (got.Answer == nil) != (want.Answer == nil) {
		t.Fatalf("%q: answer %q, encoding/json %q", msg, got.Answer, want.Answer)
	}
	sameString(t, "peer_id", got.PeerID, want.PeerID)
	sameString(t, "to_peer_id", got.ToPeerID, want.ToPeerID)
	sameString(t, "offer_id", got.OfferID, want.OfferID)
	if got.HasNumWant != (want.NumWant != nil) || want.NumWant != nil && got.NumWant != *want.NumWant {
		t.Fatalf("%q: numwant %v %d, encoding/json %v", msg, got.HasNumWant, got.NumWant, want.NumWant)
	}
	if got.HasLeft != (want.Left != nil) || want.Left != nil && got.Left != *want.Left {
		t.Fatalf("%q: left %v %v, encoding/json %v", msg, got.HasLeft, got.Left, want.Left)
	}
	if len(got.Offers) != len(want.Offers) {
		t.Fatalf("%q: %d offers, encoding/json %d", msg, len(got.Offers), len(want.Offers))
	}
	for i, o := range got.Offers {
		w := want.Offers[i]
		if !bytes.Equal(o.Offer, w.Offer) || (o.Offer == nil) != (w.Offer == nil) {
			t.Fatalf("%q: offer %d: %q, encoding/json %q", msg, i, o.Offer, w.Offer)
		}
		sameString(t, "offers.offer_id", o.OfferID, w.OfferID)
	}
}

var decodeSeeds = []string{
	``, ` `, `null`, ` null `, `nul`, `{}`, `[]`, `"x"`, `1`, `true`, `{} x`, `{}}`, `{,}`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `{"a":1 "b":2}`, `{"action":"announce"}`, `{"action":"ann\u006funce"}`,
	`{"ACTION":"scrape"}`, `{"Action":"scrape","action":"announce"}`, `{"action":null}`,
	`{"action":"a","action":null}`, `{"action":1}`, `{"action":[]}`, `{"event":"stopped","event":"completed"}`,
	`{"numwant":5}`, `{"numwant":-3}`, `{"numwant":1.5}`, `{"numwant":1e2}`, `{"numwant":"5"}`,
	`{"numwant":null}`, `{"numwant":99999999999999999999}`, `{"numwant":01}`, `{"numwant":-}`,
	`{"left":0}`, `{"left":-0.0}`, `{"left":1e400}`, `{"left":2.5E-3}`, `{"left":null}`, `{"left":true}`,
	`{"info_hash":"abc"}`, `{"info_hash":["a",null]}`, `{"info_hash":null}`, `{"info_hash": {"x":[1,2]} }`,
	`{"peer_id":null}`, `{"peer_id":5}`, `{"peer_id":"\u0000\u0001\u00ff\u00fe0123456789abcdef"}`,
	`{"peer_id":"\u0100bcdefghijklmnopqrs"}`, `{"peer_id":"\ud800bcdefghijklmnopqrs"}`,
	`{"peer_id":"\"\\\/\b\f\n\r\tabcdefghijkl"}`, "{\"peer_id\":\"\xff\xfeabcdefghijklmnopqr\"}",
	"{\"peer_id\":\"ÿþabcdefghijklmnopqr\"}", "{\"peer_id\":\"\x01bcdefghijklmnopqrst\"}",
	`{"peer_id":"abcdefghijklmnopqrstu"}`, `{"peer_id":"abcdefghijklmnopqrs"}`, `{"peer_id":"\x"}`, `{"peer_id":"\u12"}`,
	`{"offers":null}`, `{"offers":[]}`, `{"offers":[null]}`, `{"offers":[1]}`, `{"offers":{}}`,
	`{"offers":[{"offer":{"type":"offer","sdp":"v=0\r\n"},"offer_id":"abcdefghijklmnopqrst"}]}`,
	`{"offers":[{"OFFER":[1],"Offer_Id":null,"x":{}}],"offers":[{}]}`,
	`{"answer":null}`, `{"answer":{"type":"answer","sdp":"x"}}`, `{"answer":"s"}`,
	`{"to_peer_id":"x","offer_id":"y","unknown":[true,false,null,{"a":[-1.5e+3]}]}`,
	`{"a":tru}`, `{"a":nulll}`, `{"a":[1,]}`, `{"a":"` + "\x1f" + `"}`, `{"a":1.}`, `{"a":.5}`, `{"a":-01}`,
	`{"\u0061ction":"scrape"}`, `{"offerſ":[]}`, `{"a":"\ud83d\ude00"}`,
	strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
	`{"a":` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `}`,
	`{"a":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`,
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		checkDecode(t, []byte(s))
	}
	for _, a := range []map[string]any{
		announce(bin("ih"), bin("p"), 0, sdpOffer(bin("o1")), sdpOffer(bin("o2"))),
		{"action": "announce", "info_hash": bin("ih"), "peer_id": bin("p"), "to_peer_id": bin("q"),
			"offer_id": bin("o"), "answer": map[string]any{"type": "answer", "sdp": "v=0"}},
		{"action": "scrape", "info_hash": []string{bin("a"), bin("b")}},
	} {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, b)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) { checkDecode(t, msg) })
}

// benchAnnounce is a browser's announce with 5 offers of 500-byte SDPs, as wsload sends.
func benchAnnounce(b *testing.B) []byte {
	offers := make([]map[string]any, 5)
	for i := range offers {
		offers[i] = map[string]any{"offer_id": bin(string(rune('a' + i))), "offer": map[string]any{"type": "offer", "sdp": strings.Repeat("a=x\r\n", 100)}}
	}
	msg, err := json.Marshal(map[string]any{"action": "announce", "info_hash": bin("ih"), "peer_id": bin("peer"),
		"numwant": 5, "uploaded": 0, "downloaded": 0, "left": 1000, "event": "started", "offers": offers})
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// BenchmarkDecode reads an announce with 5 offers: request.decode against encoding/json into
// the struct it replaced.
func BenchmarkDecode(b *testing.B) {
	msg := benchAnnounce(b)
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		var backing [10]offer
		for b.Loop() {
			req := request{Offers: backing[:0]}
			if err := req.decode(msg); err != nil || len(req.Offers) != 5 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			var req jsonRequest
			if err := json.Unmarshal(msg, &req); err != nil || len(req.Offers) != 5 {
				b.Fatal(err)
			}
		}
	})
}
