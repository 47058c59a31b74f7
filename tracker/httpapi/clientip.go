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
// client. Over HTTP, X-Real-IP or else the last X-Forwarded-For entry — the one the proxy
// itself appended; earlier entries are whatever the client sent — is believed only when the
// connection comes from a trusted proxy.
func (h *Handler) clientIP(r *http.Request, fcgi bool) (client, peer netip.Addr) {
	peer = remoteAddr(r)
	if fcgi || !h.trusted(peer) {
		return peer, peer
	}
	if v := r.Header["X-Real-Ip"]; len(v) > 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(v[len(v)-1])); err == nil {
			return a.Unmap(), peer
		}
	}
	if v := r.Header["X-Forwarded-For"]; len(v) > 0 {
		last := v[len(v)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
			return a.Unmap(), peer
		}
	}
	return peer, peer
}

// overrideIP decides whether the announce's ip= may replace the client's address.
func (h *Handler) overrideIP(client netip.Addr) bool {
	return announce.AllowIPOverride(h.cfg.OnlyLocalOverrideIP, h.cfg.Tracker.Config().NATCheck > 0, client)
}
