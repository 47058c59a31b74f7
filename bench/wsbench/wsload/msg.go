package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The WebTorrent tracker protocol carries info_hash, peer_id and offer_id as JSON strings
// whose code points 0–255 are the 20 bytes ("binary strings" in the JavaScript client). The
// load generator builds its messages by appending, and reads the few fields it needs by
// scanning for their keys, so that it stays cheaper per message than the trackers it measures.

// appendLatin1 appends b as a JSON string of the code points b[i].
func appendLatin1(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return append(dst, '"')
}

// errNotLatin1 is returned for a JSON string with a code point above 255: no binary string.
var errNotLatin1 = errors.New("code point above 255 in a binary string")

// decodeLatin1 decodes tok, a JSON string token with its quotes, into the bytes it carries.
func decodeLatin1(tok []byte) ([]byte, error) {
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return nil, fmt.Errorf("binary string: %w", err)
	}
	out := make([]byte, 0, 20)
	for _, r := range s {
		if r > 255 {
			return nil, errNotLatin1
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// field returns the raw JSON value of the top-level-looking key in msg: a string token with
// its quotes, or a number, true/false/null, or the first byte of an object or array. Keys
// cannot occur unescaped inside a string value (their quotes would be escaped there), so a
// match is a key; both trackers write keys without escapes. ok is false when the key is absent.
func field(msg []byte, key string) (val []byte, ok bool) {
	pat := make([]byte, 0, len(key)+2)
	pat = append(append(append(pat, '"'), key...), '"')
	for off := 0; ; {
		i := bytes.Index(msg[off:], pat)
		if i < 0 {
			return nil, false
		}
		j := off + i + len(pat)
		off = j
		j = skipSpace(msg, j)
		if j >= len(msg) || msg[j] != ':' {
			continue // the same characters as a value, not as a key
		}
		j = skipSpace(msg, j+1)
		if j >= len(msg) {
			return nil, false
		}
		switch msg[j] {
		case '"':
			end, ok := stringEnd(msg, j)
			if !ok {
				return nil, false
			}
			return msg[j:end], true
		case '{', '[':
			return msg[j : j+1], true
		default:
			end := j
			for end < len(msg) && msg[end] != ',' && msg[end] != '}' && msg[end] != ']' && msg[end] != ' ' {
				end++
			}
			return msg[j:end], true
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the JSON string starting at b[start] == '"'.
func stringEnd(b []byte, start int) (int, bool) {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// kind is what a message from a tracker is to the peer that receives it.
type kind int

const (
	kindOther   kind = iota // scrape replies, anything unknown
	kindReply               // the reply to the peer's own announce (it has an interval)
	kindOffer               // an offer relayed from another peer
	kindAnswer              // an answer relayed back to the peer that offered
	kindFailure             // a "failure reason"
)

// classify tells what msg is. A relayed offer or answer is recognised by its key before the
// interval, as a tracker could put both in one message.
func classify(msg []byte) kind {
	if _, ok := field(msg, "failure reason"); ok {
		return kindFailure
	}
	if _, ok := field(msg, "offer"); ok {
		return kindOffer
	}
	if _, ok := field(msg, "answer"); ok {
		return kindAnswer
	}
	if _, ok := field(msg, "interval"); ok {
		return kindReply
	}
	return kindOther
}

// sdp returns a dummy session description of about n bytes, shaped like the ones Chromium puts
// in a WebTorrent offer (one data channel, host candidates), so that the trackers parse and
// copy strings of a realistic size. kind is "offer" or "answer".
func sdp(kind string, n int) string {
	var b bytes.Buffer
	b.WriteString("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	b.WriteString("a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n")
	b.WriteString("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n")
	b.WriteString("a=ice-ufrag:wsbn\r\na=ice-pwd:wsbenchwsbenchwsbenchws\r\na=ice-options:trickle\r\n")
	b.WriteString("a=fingerprint:sha-256 5D:2B:7C:11:8E:0A:93:44:6F:C1:0D:7E:25:B8:91:3A:60:4C:DE:AF:12:37:88:09:F5:6B:1E:C4:73:2A:9D:50\r\n")
	if kind == "offer" {
		b.WriteString("a=setup:actpass\r\n")
	} else {
		b.WriteString("a=setup:active\r\n")
	}
	b.WriteString("a=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n")
	for i := 0; b.Len() < n-2; i++ {
		b.WriteString("a=candidate:" + strconv.Itoa(1000+i) + " 1 udp 2113937151 10.77.0.1 " + strconv.Itoa(50000+i) + " typ host generation 0\r\n")
	}
	s := b.String()
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// jsonString returns s as a JSON string token.
func jsonString(s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a Go string always marshals
	}
	return b
}

// announceMsg appends an announce of peer to swarm ih with one offer per offerIDs entry;
// offerSDP is the offer's JSON string token. Without offers it is the "started" announce
// a peer sends when it joins, with numwant 0.
func announceMsg(dst []byte, ih, peer []byte, left int64, offerIDs [][]byte, offerSDP []byte, started bool) []byte {
	dst = append(dst, `{"action":"announce","info_hash":`...)
	dst = appendLatin1(dst, ih)
	dst = append(dst, `,"peer_id":`...)
	dst = appendLatin1(dst, peer)
	dst = append(dst, `,"numwant":`...)
	dst = strconv.AppendInt(dst, int64(len(offerIDs)), 10)
	dst = append(dst, `,"uploaded":0,"downloaded":0,"left":`...)
	dst = strconv.AppendInt(dst, left, 10)
	if started {
		dst = append(dst, `,"event":"started"`...)
	}
	if len(offerIDs) > 0 {
		dst = append(dst, `,"offers":[`...)
		for i, id := range offerIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"offer":{"type":"offer","sdp":`...)
			dst = append(dst, offerSDP...)
			dst = append(dst, `},"offer_id":`...)
			dst = appendLatin1(dst, id)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// answerMsg appends the answer of peer to a relayed offer: ihTok, fromTok and offerIDTok are
// the offer's info_hash, peer_id and offer_id tokens, copied as the tracker wrote them (the
// same bytes, whatever escapes it chose), as the webtorrent client answers.
func answerMsg(dst []byte, ihTok, peer, fromTok, offerIDTok, answerSDP []byte) []byte {
	dst = append(dst, `{"action":"announce","info_hash":`...)
	dst = append(dst, ihTok...)
	dst = append(dst, `,"peer_id":`...)
	dst = appendLatin1(dst, peer)
	dst = append(dst, `,"to_peer_id":`...)
	dst = append(dst, fromTok...)
	dst = append(dst, `,"answer":{"type":"answer","sdp":`...)
	dst = append(dst, answerSDP...)
	dst = append(dst, `},"offer_id":`...)
	dst = append(dst, offerIDTok...)
	return append(dst, '}')
}
