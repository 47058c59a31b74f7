package wsapi

import (
	"encoding/json"

	"strconv"
	"unicode/utf8"
)

// request is a message from a client. The 20-byte fields are JSON strings whose code points
// are the bytes (0–255), as JavaScript's binary strings.
type request struct {
	Action   string          `json:"action"`
	InfoHash json.RawMessage `json:"info_hash"` // a string, or for scrape an array of them
	PeerID   string          `json:"peer_id"`
	NumWant  *int            `json:"numwant"`
	Left     *float64        `json:"left"`
	Event    string          `json:"event"`
	Offers   []offer         `json:"offers"`
	ToPeerID string          `json:"to_peer_id"`
	OfferID  string          `json:"offer_id"`
	Answer   json.RawMessage `json:"answer"`
	// uploaded and downloaded are ignored, as every WebSocket tracker does.
}

type offer struct {
	Offer   json.RawMessage `json:"offer"`
	OfferID string          `json:"offer_id"`
}

// fieldError is a field that is missing or malformed; its message names the field.
type fieldError struct{ field string }

func (e *fieldError) Error() string { return "invalid " + e.field }

// binary20 decodes a 20-character binary string.
func binary20(s, field string) ([20]byte, error) {
	var b [20]byte
	if len(s) < 20 || len(s) > 40 { // 20 code points take 20 to 40 bytes of UTF-8
		return b, &fieldError{field}
	}
	i := 0
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError || i == 20 {
			return b, &fieldError{field}
		}
		b[i] = byte(r)
		i++
	}
	if i != 20 {
		return b, &fieldError{field}
	}
	return b, nil
}

// appendBinary appends b as a JSON string of code points 0–255.
func appendBinary(dst []byte, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&':
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < 0x80:
			dst = append(dst, c)
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return append(dst, '"')
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // never fails for a string
	return append(dst, b...)
}

// appendCounts appends ,"complete":…,"incomplete":… .
func appendCounts(dst []byte, complete, incomplete int) []byte {
	dst = append(dst, `"complete":`...)
	dst = strconv.AppendInt(dst, int64(complete), 10)
	dst = append(dst, `,"incomplete":`...)
	return strconv.AppendInt(dst, int64(incomplete), 10)
}

// failureMessage is the reply to a message refused: action (when known), the info_hash (so
// the webtorrent client shows it as the torrent's warning) and the reason.
func failureMessage(action string, ih []byte, reason string) []byte {
	b := []byte(`{`)
	if action != "" {
		b = append(b, `"action":`...)
		b = appendString(b, action)
		b = append(b, ',')
	}
	if ih != nil {
		b = append(b, `"info_hash":`...)
		b = appendBinary(b, ih)
		b = append(b, ',')
	}
	b = append(b, `"failure reason":`...)
	b = appendString(b, reason)
	return append(b, '}')
}
