package wsapi

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file decodes the protocol's few message shapes without reflection: one pass over the
// message that checks it is JSON and keeps the fields the tracker reads as slices of the
// message itself (an SDP offer or answer is relayed as the bytes the client sent). It
// accepts and refuses what encoding/json decoding into the same fields would (fields matched
// case-insensitively, null leaving a string as it was, a type mismatch being an error, at
// most 10,000 levels of nesting); decode_test.go checks that against encoding/json.

// request is a message from a client. The 20-byte fields are JSON strings whose code points
// are the bytes (0–255), as JavaScript's binary strings; they are kept as raw JSON values and
// read with binary20. The slices point into the message.
type request struct {
	Action     string
	InfoHash   []byte // raw JSON value: a string, or for scrape an array of them; nil if absent
	PeerID     []byte // raw JSON string; nil if absent or null
	NumWant    int
	HasNumWant bool
	Left       float64
	HasLeft    bool
	Event      string
	Offers     []offer
	ToPeerID   []byte // raw JSON string
	OfferID    []byte // raw JSON string
	Answer     []byte // raw JSON value; nil if absent
	// uploaded and downloaded are ignored, as every WebSocket tracker does.
}

type offer struct {
	Offer   []byte // raw JSON value
	OfferID []byte // raw JSON string
}

// errJSON is a message that is not JSON, or whose fields have the wrong JSON types.
var errJSON = errors.New("malformed JSON")

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// decoder reads one JSON text.
type decoder struct {
	b     []byte
	i     int
	depth int
}

// decode fills req from the JSON text b, reusing req.Offers's array.
func (req *request) decode(b []byte) error {
	offers := req.Offers[:0]
	*req = request{Offers: offers}
	d := decoder{b: b}
	d.space()
	if d.i >= len(b) {
		return errJSON
	}
	var err error
	switch b[d.i] {
	case '{':
		d.enter()
		for n := 0; err == nil; {
			var key []byte
			var ok bool
			if key, ok, err = d.nextKey(&n); !ok {
				break
			}
			err = req.field(key, &d)
		}
	case 'n':
		err = d.literal("null")
	default:
		_, err = d.value() // a syntax error and a type error are the same to the caller
		if err == nil {
			err = errJSON
		}
	}
	if err != nil {
		return err
	}
	d.space()
	if d.i != len(b) {
		return errJSON
	}
	return nil
}

// field reads the value of the request's member named key.
func (req *request) field(key []byte, d *decoder) error {
	switch k := matchKey(key, requestKeys); k {
	case "action":
		return d.wordInto(&req.Action, actions)
	case "event":
		return d.wordInto(&req.Event, events)
	case "info_hash":
		return d.rawInto(&req.InfoHash)
	case "answer":
		return d.rawInto(&req.Answer)
	case "peer_id":
		return d.rawStringInto(&req.PeerID)
	case "to_peer_id":
		return d.rawStringInto(&req.ToPeerID)
	case "offer_id":
		return d.rawStringInto(&req.OfferID)
	case "numwant":
		raw, isNull, err := d.number()
		if err != nil || isNull {
			req.HasNumWant = false
			return err
		}
		n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
		if err != nil {
			return errJSON
		}
		req.NumWant, req.HasNumWant = int(n), true
		return nil
	case "left":
		raw, isNull, err := d.number()
		if err != nil || isNull {
			req.HasLeft = false
			return err
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return errJSON
		}
		req.Left, req.HasLeft = f, true
		return nil
	case "offers":
		return d.offers(req)
	}
	_, err := d.value()
	return err
}

var (
	actions     = []string{"announce", "scrape"}
	events      = []string{"started", "completed", "stopped", "update", "paused"}
	requestKeys = []string{"action", "event", "info_hash", "answer", "peer_id", "to_peer_id", "offer_id", "numwant", "left", "offers"}
	offerKeys   = []string{"offer", "offer_id"}
)

// matchKey returns the name in names that key matches, exactly or else case-insensitively
// (as encoding/json matches struct fields), or "".
func matchKey(key []byte, names []string) string {
	for _, n := range names {
		if string(key) == n {
			return n
		}
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return n
		}
	}
	return ""
}

// offers reads the offers array into req.Offers.
func (d *decoder) offers(req *request) error {
	d.space()
	if d.peek() == 'n' {
		req.Offers = nil
		return d.literal("null")
	}
	if d.peek() != '[' {
		return errJSON
	}
	// As encoding/json, a second "offers" decodes into the first one's elements.
	prev := req.Offers
	list := prev[:0]
	d.enter()
	var err error
	for n := 0; err == nil; {
		var ok bool
		if ok, err = d.nextElem(&n); !ok {
			break
		}
		d.space()
		var o offer
		if len(list) < len(prev) {
			o = prev[len(list)]
		}
		switch d.peek() {
		case 'n':
			err = d.literal("null")
		case '{':
			d.enter()
			for n := 0; err == nil; {
				var key []byte
				if key, ok, err = d.nextKey(&n); !ok {
					break
				}
				switch matchKey(key, offerKeys) {
				case "offer":
					err = d.rawInto(&o.Offer)
				case "offer_id":
					err = d.rawStringInto(&o.OfferID)
				default:
					_, err = d.value()
				}
			}
		default:
			err = errJSON
		}
		list = append(list, o)
	}
	req.Offers = list
	return err
}

func (d *decoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value skips one value and returns its bytes.
func (d *decoder) value() ([]byte, error) {
	d.space()
	start := d.i
	var err error
	switch c := d.peek(); {
	case c == '{':
		err = d.object()
	case c == '[':
		err = d.array()
	case c == '"':
		_, _, err = d.str()
	case c == 't':
		err = d.literal("true")
	case c == 'f':
		err = d.literal("false")
	case c == 'n':
		err = d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		err = d.num()
	default:
		err = errJSON
	}
	return d.b[start:d.i], err
}

// rawInto stores the next value's bytes in *dst.
func (d *decoder) rawInto(dst *[]byte) error {
	raw, err := d.value()
	*dst = raw
	return err
}

// rawStringInto stores the next value, a string, as its raw bytes in *dst; null leaves it.
func (d *decoder) rawStringInto(dst *[]byte) error {
	d.space()
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '"':
		start := d.i
		_, _, err := d.str()
		*dst = d.b[start:d.i]
		return err
	}
	return errJSON
}

// wordInto stores the next value, a string, decoded in *dst; null leaves it. One of words
// costs no allocation.
func (d *decoder) wordInto(dst *string, words []string) error {
	d.space()
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '"':
		s, escaped, err := d.str()
		if err != nil {
			return err
		}
		if escaped || !utf8.Valid(s) {
			s = unescape(nil, s)
		}
		for _, w := range words {
			if string(s) == w {
				*dst = w
				return nil
			}
		}
		*dst = string(s)
		return nil
	}
	return errJSON
}

// number reads the next value, a number or null.
func (d *decoder) number() (raw []byte, isNull bool, err error) {
	d.space()
	switch c := d.peek(); {
	case c == 'n':
		return nil, true, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		start := d.i
		err := d.num()
		return d.b[start:d.i], false, err
	}
	return nil, false, errJSON
}

// enter consumes the '{' or '[' that opens an object or array.
func (d *decoder) enter() {
	d.i++
	d.depth++
}

// nextKey reads the key and colon of an object's next member and reports true, or reads the
// closing '}' and reports false. n counts the members read.
func (d *decoder) nextKey(n *int) (key []byte, ok bool, err error) {
	if ok, err = d.more(n, '}'); !ok {
		return nil, false, err
	}
	if d.peek() != '"' {
		return nil, false, errJSON
	}
	key, escaped, err := d.str()
	if err != nil {
		return nil, false, err
	}
	d.space()
	if d.peek() != ':' {
		return nil, false, errJSON
	}
	d.i++
	if escaped || !utf8.Valid(key) {
		key = unescape(nil, key)
	}
	return key, true, nil
}

// nextElem reports true with the decoder at an array's next element, or reads the closing
// ']' and reports false. n counts the elements read.
func (d *decoder) nextElem(n *int) (bool, error) { return d.more(n, ']') }

// more reads the ',' before the next member or element and reports true, or the closing
// byte and reports false.
func (d *decoder) more(n *int, closing byte) (bool, error) {
	if d.depth > maxDepth {
		return false, errJSON
	}
	d.space()
	switch c := d.peek(); {
	case c == closing:
		d.i++
		d.depth--
		return false, nil
	case *n == 0:
	case c == ',':
		d.i++
		d.space()
		if d.peek() == closing {
			return false, errJSON
		}
	default:
		return false, errJSON
	}
	*n++
	return true, nil
}

// object skips an object.
func (d *decoder) object() error {
	d.enter()
	for n := 0; ; {
		_, ok, err := d.nextKey(&n)
		if !ok || err != nil {
			return err
		}
		if _, err := d.value(); err != nil {
			return err
		}
	}
}

// array skips an array.
func (d *decoder) array() error {
	d.enter()
	for n := 0; ; {
		ok, err := d.nextElem(&n)
		if !ok || err != nil {
			return err
		}
		if _, err := d.value(); err != nil {
			return err
		}
	}
}

// str reads a string and returns its contents, still escaped, and whether it has escapes.
func (d *decoder) str() (s []byte, escaped bool, err error) {
	d.i++ // '"'
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			s = d.b[start:d.i]
			d.i++
			return s, escaped, nil
		case c == '\\':
			escaped = true
			d.i++
			switch d.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i++
			case 'u':
				if d.i+5 > len(d.b) || !isHex4(d.b[d.i+1:d.i+5]) {
					return nil, false, errJSON
				}
				d.i += 5
			default:
				return nil, false, errJSON
			}
		case c < 0x20:
			return nil, false, errJSON
		default:
			d.i++
		}
	}
	return nil, false, errJSON
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// num reads a number (JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?).
func (d *decoder) num() error {
	if d.peek() == '-' {
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return errJSON
	}
	if d.peek() == '.' {
		d.i++
		if !d.digits() {
			return errJSON
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if !d.digits() {
			return errJSON
		}
	}
	return nil
}

// digits reads [0-9]* and reports whether it read any.
func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

func (d *decoder) literal(lit string) error {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return errJSON
	}
	d.i += len(lit)
	return nil
}

// unescape appends the string contents s (checked by str) decoded to dst, as encoding/json
// decodes them: invalid UTF-8 and lone surrogates become U+FFFD.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2 = utf16.DecodeRune(r, hex4(s[i+2:]))
					}
					if r2 != utf8.RuneError {
						i += 6
					}
					r = r2
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				dst = append(dst, unescapeByte(e))
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
		}
	}
	return dst
}

// unescapeByte is the byte of a one-byte escape \e (str has checked e).
func unescapeByte(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // " \ /
}

// binary20 decodes raw, a JSON string of 20 code points 0–255, to its bytes. Anything else
// (another JSON type, null, absent) is an invalid field.
func binary20(raw []byte, field string) ([20]byte, error) {
	var b [20]byte
	if len(raw) < 22 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return b, &fieldError{field}
	}
	s := raw[1 : len(raw)-1] // checked by the decoder
	n := 0
	for i := 0; i < len(s); {
		if n == 20 {
			return b, &fieldError{field}
		}
		var r rune
		switch c := s[i]; {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'u':
				r = hex4(s[i+2:]) // a surrogate is above 0xff too
				i += 6
			default:
				r = rune(unescapeByte(e))
				i += 2
			}
		case c < utf8.RuneSelf:
			r = rune(c)
			i++
		default:
			var size int
			r, size = utf8.DecodeRune(s[i:])
			i += size
		}
		if r > 0xff {
			return b, &fieldError{field}
		}
		b[n] = byte(r)
		n++
	}
	if n != 20 {
		return b, &fieldError{field}
	}
	return b, nil
}
