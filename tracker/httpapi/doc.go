// Package httpapi is the tracker's HTTP frontend: announce (BEP 3, with BEP 23 compact and
// BEP 7 IPv6 peer lists, BEP 24 external ip) and scrape (BEP 48) parsed from the raw query,
// client-IP resolution behind trusted proxies, bencoded replies built without allocating, and
// the stats, metrics and health routes (gorilla/mux). The same Handler serves plain HTTP and,
// through FastCGI(), net/http/fcgi: only the client-IP rule differs.
//
// Server puts a fast path in front of net/http for plain HTTP: it reads HTTP/1.0 and 1.1
// (RFC 9112) requests off the socket itself, answers GET announces and scrapes there, and
// hands every other request, with the rest of its connection, to an http.Server serving the
// same Handler. On Linux the goroutines accepting connections answer a "Connection: close"
// announce or scrape themselves, with no goroutine or netpoll registration for the
// connection (inline_linux.go); the rest go to a goroutine each.
//
// The front door has limits of its own. Server.LimitConns caps the connections open at once
// below the file descriptor limit (a connection moving to its goroutine needs a spare
// descriptor for a moment); at the cap a new connection closes the one that has waited
// longest for a request (conncap.go). LimitFastCGI bounds what a FastCGI connection may make
// net/http/fcgi hold: PARAMS, requests begun, silence, connections (fcgilimit.go). Routes
// other than announce and scrape are served only under their canonical path, and a mount
// prefix is stripped once: from FastCGI requests (which carry the full path) or by
// Config.Prefix, never again from an HTTP proxy's X-Forwarded-Prefix, which names what the
// proxy stripped.
//
// The full scrape (no info_hash) lists every torrent, so it is bounded: a tracker with more
// than Config.MaxFullScrape torrents refuses it; below, one request builds it, cached for a
// second, and requests arriving during a build never wait for it (they may be on an accepting
// goroutine): they get the previous body, or a failure telling them to retry. Large replies
// are written under Config.WriteTimeout, so a client that never reads cannot pin one.
package httpapi
