package wsapi

import (
	"encoding/json"

	"strconv"
	"unicode/utf8"
)

// fieldError is a field that is missing or malformed; its message names the field.
type fieldError struct{ field string }

func (e *fieldError) Error() string { return "invalid " + e.field }

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
