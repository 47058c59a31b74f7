package httpapi

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/webswarm/webswarm/tracker/announce"
)

// remoteAddr parses r.RemoteAddr: "ip:port" or "[ip6]:port" (net/http, and net/http/fcgi,
// which joins REMOTE_ADDR and REMOTE_PORT with net.JoinHostPort), or a bare address.
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// trusted reports whether a is one of the configured proxies.
func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP resolves the client's address. Over FastCGI the web server's REMOTE_ADDR is the
// client. Over HTTP, a trusted proxy's X-Real-IP or X-Forwarded-For names it (see
// forwardedClient).
func (h *Handler) clientIP(r *http.Request, fcgi bool) (client, peer netip.Addr) {
	peer = remoteAddr(r)
	if fcgi || !h.trusted(peer) {
		return peer, peer
	}
	return forwardedClient(peer, lastValue(r.Header["X-Real-Ip"]), lastValue(r.Header["X-Forwarded-For"])), peer
}

// forwardedClient returns the client a trusted proxy at peer names: realIP (the last
// X-Real-IP value) or else the last entry of xff (the last X-Forwarded-For value) — the one
// the proxy itself appended; earlier entries are whatever the client sent. Without a valid
// address in either, the proxy itself is the client.
func forwardedClient(peer netip.Addr, realIP, xff string) netip.Addr {
	if realIP != "" {
		if a, err := netip.ParseAddr(strings.TrimSpace(realIP)); err == nil {
			return a.Unmap()
		}
	}
	if xff != "" {
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			xff = xff[i+1:]
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(xff)); err == nil {
			return a.Unmap()
		}
	}
	return peer
}

// lastValue returns the last of a header's values, "" when there are none.
func lastValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// overrideIP decides whether the announce's ip= may replace the client's address.
func (h *Handler) overrideIP(client netip.Addr) bool {
	return announce.AllowIPOverride(h.cfg.OnlyLocalOverrideIP, h.cfg.Tracker.Config().NATCheck > 0, client)
}
