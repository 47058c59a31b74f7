package httpapi

import "strings"

// head is a request head the fast path answers itself: a GET in origin form over HTTP/1.0
// or HTTP/1.1 whose every byte means the same to net/http. parseHead refuses everything
// else, and the request goes to net/http untouched; so the fast path needs to know only what
// net/http accepts, never how it rejects.
type head struct {
	uri, proto  string // as the request line has them (for the access log)
	path, query string // uri split at its first '?'
	http10      bool
	close       bool   // the client asked for the connection to be closed after the reply
	keepAlive10 bool   // an HTTP/1.0 client asked for keep-alive
	realIP, xff string // the last X-Real-IP and X-Forwarded-For values
	prefix      string // the first X-Forwarded-Prefix value
	agent, ref  string // the first User-Agent and Referer values
}

// parseHead parses s, a whole request head: the request line and each header line end in
// CRLF, and an empty line ends s. It reports false for anything the fast path leaves to
// net/http: another method or protocol version, an absolute-form target, an escaped or
// non-ASCII path, a body (Content-Length, Transfer-Encoding, Expect), header syntax net/http
// reads differently or refuses (obs-fold, spaces before a colon, control bytes), an
// HTTP/1.1 request without exactly one Host, repeated or contradictory Connection headers,
// an Upgrade to websocket (a WebSocket announce).
func parseHead(s string, h *head) bool {
	*h = head{}
	line, s, ok := cutLine(s)
	if !ok {
		return false
	}
	rest, ok := strings.CutPrefix(line, "GET ")
	if !ok {
		return false
	}
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		return false
	}
	h.uri, h.proto = rest[:sp], rest[sp+1:]
	switch h.proto {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return false
	}
	if !validTarget(h.uri) {
		return false
	}
	h.path, h.query, _ = strings.Cut(h.uri, "?")
	if strings.IndexByte(h.path, '%') >= 0 {
		return false // net/http unescapes the path; leave that to it
	}
	var hosts, conns int
	var conn string
	var prefixSeen, agentSeen, refSeen bool
	for {
		if line, s, ok = cutLine(s); !ok {
			return false
		}
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !validName(line[:colon]) {
			return false // includes obs-fold (a leading space) and "Name :"
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validValue(value) {
			return false
		}
		switch len(name) {
		case 4:
			if strings.EqualFold(name, "Host") {
				hosts++
				if hosts > 1 || !validHost(value) {
					return false
				}
			}
		case 6:
			if strings.EqualFold(name, "Expect") {
				return false
			}
		case 7:
			if !refSeen && strings.EqualFold(name, "Referer") {
				h.ref, refSeen = value, true
			} else if strings.EqualFold(name, "Upgrade") && upgradeWebSocket(value) {
				return false // a WebSocket announce: net/http hijacks it for Config.WebSocket
			}
		case 9:
			if strings.EqualFold(name, "X-Real-IP") {
				h.realIP = value
			}
		case 10:
			if strings.EqualFold(name, "Connection") {
				conns++
				conn = value
			} else if !agentSeen && strings.EqualFold(name, "User-Agent") {
				h.agent, agentSeen = value, true
			}
		case 14:
			if strings.EqualFold(name, "Content-Length") {
				return false
			}
		case 15:
			if strings.EqualFold(name, "X-Forwarded-For") {
				h.xff = value
			}
		case 17:
			if strings.EqualFold(name, "Transfer-Encoding") {
				return false
			}
		case 18:
			if !prefixSeen && strings.EqualFold(name, "X-Forwarded-Prefix") {
				h.prefix, prefixSeen = value, true
			}
		}
	}
	if s != "" || conns > 1 || (hosts == 0 && !h.http10) {
		return false // net/http answers 400 to an HTTP/1.1 request without Host
	}
	closeTok, keepAlive, ok := connectionTokens(conn)
	if !ok || (closeTok && keepAlive) {
		return false
	}
	if h.http10 {
		h.close, h.keepAlive10 = !keepAlive, keepAlive
	} else {
		h.close = closeTok
	}
	return true
}

// cutLine cuts s at its first CRLF.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.Index(s, "\r\n")
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+2:], true
}

// trimOWS trims the optional white space (SP, HTAB) around a header value, as net/http does.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// connectionTokens reads a Connection value as a comma-separated list of tokens. ok is
// false for anything else (where net/http's two token matchers could disagree).
func connectionTokens(v string) (closeTok, keepAlive, ok bool) {
	for v != "" {
		var el string
		el, v, _ = strings.Cut(v, ",")
		el = trimOWS(el)
		switch {
		case el == "":
		case !validName(el):
			return false, false, false
		case strings.EqualFold(el, "close"):
			closeTok = true
		case strings.EqualFold(el, "keep-alive"):
			keepAlive = true
		}
	}
	return closeTok, keepAlive, true
}

// upgradeWebSocket reports whether an Upgrade value lists websocket (any case), as
// isUpgrade does on net/http's side.
func upgradeWebSocket(v string) bool {
	for v != "" {
		var el string
		el, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(trimOWS(el), "websocket") {
			return true
		}
	}
	return false
}

// validTarget accepts an origin-form target of visible ASCII.
func validTarget(t string) bool {
	if t == "" || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validName reports whether s is an RFC 9110 token (a header name).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validValue accepts a header value net/http accepts unchanged: visible ASCII, SP, HTAB and
// obs-text (bytes ≥ 0x80); no other control byte.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts the Host values every client sends (name or address, optional port):
// a subset of what net/http's check allows, so a Host the fast path accepts net/http accepts.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}
