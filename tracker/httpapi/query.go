package httpapi

import (
	"net/netip"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
)

// The query is parsed from r.URL.RawQuery byte by byte: url.Values would drop every pair
// holding a literal ';' and turn '+' into a space, and it allocates a map per request. Pairs
// are separated by '&' only; "%XX" escapes are decoded in either case; '+' stays '+' (binary
// info-hashes contain it, escaped or not).

// maxKey bounds the key bytes kept (BEP 3 leaves the length open; clients send 4–20).
const maxKey = 64

// parsed holds one request's raw parameters. It lives in a pooled per-request state so
// parsing allocates nothing.
type parsed struct {
	infoHash, peerID  bool
	port, left        bool
	ip                netip.Addr
	ipGiven           bool
	keyBuf            [maxKey]byte
	keyLen            int
	numWant           int
	compact, noPeerID int8 // -1 absent, 0 or 1
	hashes            []bittorrent.InfoHash
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape decodes s into dst (which must be big enough for len(s) bytes) and returns the
// decoded length, or -1 for a malformed escape.
func unescape(dst []byte, s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return -1
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return -1
			}
			c = hi<<4 | lo
			i += 2
		}
		dst[n] = c
		n++
	}
	return n
}

// decode20 decodes a 20-byte binary value (info_hash, peer_id).
func decode20(dst *[20]byte, s string) bool {
	if len(s) < 20 || len(s) > 60 {
		return false
	}
	var buf [60]byte
	n := unescape(buf[:], s)
	if n != 20 {
		return false
	}
	copy(dst[:], buf[:20])
	return true
}

// decodeSmall decodes a short ASCII value (a number, an event, an address) into buf.
func decodeSmall(buf *[64]byte, s string) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	n := unescape(buf[:], s)
	if n < 0 {
		return nil, false
	}
	return buf[:n], true
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt parses a decimal that may be negative (numwant=-1 means "default").
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseUint(b)
	if !ok || u > 1<<62 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// nextPair splits the first "key=value" off q.
func nextPair(q string) (key, value, rest string) {
	end := len(q)
	for i := 0; i < len(q); i++ {
		if q[i] == '&' {
			end = i
			rest = q[i+1:]
			break
		}
	}
	pair := q[:end]
	for i := 0; i < len(pair); i++ {
		if pair[i] == '=' {
			return pair[:i], pair[i+1:], rest
		}
	}
	return pair, "", rest
}

// parseAnnounce fills req and p from a raw announce query.
func parseAnnounce(q string, req *announce.Request, p *parsed) error {
	*p = parsed{numWant: -1, compact: -1, noPeerID: -1, hashes: p.hashes[:0]}
	req.Event = 0
	var small [64]byte
	for q != "" {
		var k, v string
		k, v, q = nextPair(q)
		switch k {
		case "info_hash":
			if p.infoHash {
				return announce.Errorf(announce.CodeBadInfoHash, "info_hash given twice")
			}
			if !decode20((*[20]byte)(&req.InfoHash), v) {
				return announce.Errorf(announce.CodeBadInfoHash, "invalid info_hash: want 20 bytes, url-encoded")
			}
			p.infoHash = true
		case "peer_id":
			if !decode20((*[20]byte)(&req.PeerID), v) {
				return announce.Errorf(announce.CodeBadPeerID, "invalid peer_id: want 20 bytes, url-encoded")
			}
			p.peerID = true
		case "port":
			b, ok := decodeSmall(&small, v)
			n, ok2 := parseUint(b)
			if !ok || !ok2 || n == 0 || n > 65535 {
				return announce.Errorf(announce.CodeBadPort, "invalid port %q: want 1-65535", clip(v))
			}
			req.Port = uint16(n)
			p.port = true
		case "uploaded", "downloaded", "left":
			b, ok := decodeSmall(&small, v)
			n, ok2 := parseUint(b)
			if !ok || !ok2 {
				return announce.Errorf(announce.CodeBadNumber, "invalid %s %q: want a non-negative integer", k, clip(v))
			}
			switch k {
			case "uploaded":
				req.Uploaded = n
			case "downloaded":
				req.Downloaded = n
			default:
				req.Left = n
				p.left = true
			}
		case "event":
			b, ok := decodeSmall(&small, v)
			if !ok {
				return announce.Errorf(announce.CodeBadEvent, "invalid event %q", clip(v))
			}
			ev, err := announce.ParseEvent(b)
			if err != nil {
				return err
			}
			req.Event = ev
		case "numwant", "num_want":
			b, ok := decodeSmall(&small, v)
			n, ok2 := parseInt(b)
			if !ok || !ok2 {
				return announce.Errorf(announce.CodeBadNumber, "invalid numwant %q", clip(v))
			}
			if n < 0 {
				n = -1
			}
			p.numWant = int(min(n, 1<<20))
		case "compact", "no_peer_id":
			b, ok := decodeSmall(&small, v)
			f := int8(0)
			if ok && len(b) > 0 && b[0] != '0' {
				f = 1
			}
			if k == "compact" {
				p.compact = f
			} else {
				p.noPeerID = f
			}
		case "key":
			if len(v) > 3*maxKey {
				return announce.Errorf(announce.CodeBadRequest, "key longer than %d bytes", maxKey)
			}
			var buf [3 * maxKey]byte
			n := unescape(buf[:], v)
			if n < 0 || n > maxKey {
				return announce.Errorf(announce.CodeBadRequest, "invalid key")
			}
			p.keyLen = copy(p.keyBuf[:], buf[:n])
		case "ip", "ipv4", "ipv6":
			if k != "ip" && p.ipGiven {
				break // ip= wins over ipv4=/ipv6=
			}
			b, ok := decodeSmall(&small, v)
			if !ok {
				return announce.Errorf(announce.CodeBadIP, "invalid %s %q", k, clip(v))
			}
			if len(b) == 0 {
				break
			}
			a, err := netip.ParseAddr(string(b))
			if err != nil {
				// BEP 7 allows "[addr]:port" and "addr:port" in ipv4=/ipv6=.
				ap, err2 := netip.ParseAddrPort(string(b))
				if err2 != nil {
					return announce.Errorf(announce.CodeBadIP, "%s=%q is not an IP address", k, clip(v))
				}
				a = ap.Addr()
			}
			p.ip = a.Unmap()
			p.ipGiven = true
		}
	}
	switch {
	case !p.infoHash:
		return announce.Errorf(announce.CodeBadInfoHash, "missing info_hash")
	case !p.peerID:
		return announce.Errorf(announce.CodeBadPeerID, "missing peer_id")
	case !p.port:
		return announce.Errorf(announce.CodeBadPort, "missing port")
	case !p.left:
		return announce.Errorf(announce.CodeBadNumber, "missing left")
	}
	req.NumWant = p.numWant
	req.Compact = p.compact != 0 // compact unless the client asks for compact=0
	req.NoPeerID = p.noPeerID == 1
	req.Key = p.keyBuf[:p.keyLen]
	return nil
}

// parseScrape collects the info_hash parameters of a scrape (up to max).
func parseScrape(q string, hashes []bittorrent.InfoHash, max int) ([]bittorrent.InfoHash, error) {
	hashes = hashes[:0]
	for q != "" {
		var k, v string
		k, v, q = nextPair(q)
		if k != "info_hash" {
			continue
		}
		if len(hashes) >= max {
			return hashes, announce.Errorf(announce.CodeTooManyHashes, "more than %d info_hash parameters", max)
		}
		var ih bittorrent.InfoHash
		if !decode20((*[20]byte)(&ih), v) {
			return hashes, announce.Errorf(announce.CodeBadInfoHash, "invalid info_hash: want 20 bytes, url-encoded")
		}
		hashes = append(hashes, ih)
	}
	return hashes, nil
}

// clip shortens a value quoted in a failure reason.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
