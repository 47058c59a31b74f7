package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/benc"
	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Scrape modes (--scrape).
const (
	ScrapeFull     = "full"     // specific scrapes and the full scrape (no info_hash)
	ScrapeSpecific = "specific" // only scrapes that name info-hashes
	ScrapeOff      = "off"      // no scrapes
)

// Config configures a Handler.
type Config struct {
	Tracker *announce.Tracker
	// Health, if set, is asked by /healthz: an error answers 503 with its text (a shared
	// store that is down), so a load balancer sends clients to another instance.
	Health func() error
	// TrustedProxies are the addresses whose X-Real-IP / X-Forwarded-For are believed.
	TrustedProxies []netip.Prefix
	// OnlyLocalOverrideIP is bttrack's only_local_override_ip (0, 1 or 2).
	OnlyLocalOverrideIP int
	// Prefix is stripped from request paths (a sub-path mount whose proxy passes the full
	// path, e.g. "/tracker"). Without it, FastCGI requests have the X-Forwarded-Prefix the web
	// server sets stripped. Over HTTP, X-Forwarded-Prefix names a prefix the proxy has already
	// stripped, so it is never stripped again: /tracker/tracker/metrics must not become
	// /metrics behind a proxy that only guards /tracker/metrics.
	Prefix string
	// Scrape is ScrapeFull, ScrapeSpecific or ScrapeOff (default ScrapeFull).
	Scrape string
	// MaxScrapeHashes bounds the info_hash parameters of one scrape (default 1000).
	MaxScrapeHashes int
	// MaxFullScrape bounds the torrents a full scrape (no info_hash) lists: a tracker with
	// more refuses it, for the reply would be megabytes rebuilt every second (default 10,000;
	// negative: no bound).
	MaxFullScrape int
	// MaxQuery bounds the raw query length (default 64 KiB).
	MaxQuery int
	// TrackerID is sent as "tracker id" (default "webswarm").
	TrackerID string
	// Name returns a torrent's name for scrape replies (nil: no names).
	Name func(ih bittorrent.InfoHash) (string, bool)
	// Stats serves the stats page ("/" and "/stats"), StatsJSON "/stats.json", Metrics
	// MetricsPath (default "/metrics"). Nil handlers answer 404.
	Stats, StatsJSON, Metrics http.Handler
	MetricsPath               string
	// Favicon is served at /favicon.ico when set.
	Favicon []byte
	// TorrentFile returns the path of a torrent's .torrent file for /file?info_hash=
	// (bttrack's allow_get); nil turns the route off.
	TorrentFile func(ih bittorrent.InfoHash) (string, bool)
	// RateLimit, when set, bounds announces per client IP.
	RateLimit *announce.RateLimiter
	// AccessLog receives one combined-format line per request (nil: none).
	AccessLog *AccessLog
	// Latency observes request durations, labelled frontend ("http", "fastcgi") and kind
	// ("announce", "scrape", "other"). Nil: not observed.
	Latency *prometheus.HistogramVec
	// Registerer receives the Handler's own counters (nil: not registered).
	Registerer prometheus.Registerer
	// WebSocket, when set, serves the announces that ask for "Upgrade: websocket" over
	// plain HTTP (the WebTorrent tracker); nil answers them 400. FastCGI cannot carry a
	// WebSocket: upgrades arriving that way are answered 400 naming the HTTP port.
	WebSocket WebSocketHandler
	// WriteTimeout bounds writing a large reply (a full scrape, the stats page, metrics) to a
	// slow reader; small replies go into the socket buffer at once. 0: no deadline.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// WebSocketHandler serves a WebSocket announce: it upgrades the request (taking the
// connection over) or answers it with an error. client is the address resolved through the
// trusted proxies.
type WebSocketHandler interface {
	ServeWebSocket(w http.ResponseWriter, r *http.Request, client netip.Addr)
}

// Handler serves the tracker over HTTP. FastCGI returns the same handler for net/http/fcgi.
type Handler struct {
	cfg    Config
	router *mux.Router
	pool   sync.Pool
	full   fullScrape
	obs    [2][3]prometheus.Observer // [frontend][kind]
	// nonCanonical counts requests refused for a non-canonical path.
	nonCanonical prometheus.Counter
}

type state struct {
	req    announce.Request
	resp   announce.Response
	p      parsed
	hashes []bittorrent.InfoHash
	buf    []byte
}

const (
	kindAnnounce = iota
	kindScrape
	kindOther
)

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Tracker == nil {
		return nil, fmt.Errorf("httpapi: no tracker")
	}
	switch cfg.Scrape {
	case "":
		cfg.Scrape = ScrapeFull
	case ScrapeFull, ScrapeSpecific, ScrapeOff:
	default:
		return nil, fmt.Errorf("httpapi: scrape mode %q: want full, specific or off", cfg.Scrape)
	}
	if cfg.OnlyLocalOverrideIP < 0 || cfg.OnlyLocalOverrideIP > 2 {
		return nil, fmt.Errorf("httpapi: only_local_override_ip %d: want 0, 1 or 2", cfg.OnlyLocalOverrideIP)
	}
	if cfg.MaxScrapeHashes <= 0 {
		cfg.MaxScrapeHashes = 1000
	}
	if cfg.MaxFullScrape == 0 {
		cfg.MaxFullScrape = 10_000
	}
	if cfg.MaxQuery <= 0 {
		cfg.MaxQuery = 64 << 10
	}
	if cfg.TrackerID == "" {
		cfg.TrackerID = "webswarm"
	}
	if cfg.MetricsPath == "" {
		cfg.MetricsPath = "/metrics"
	}
	if !strings.HasPrefix(cfg.MetricsPath, "/") {
		return nil, fmt.Errorf("httpapi: metrics path %q must start with /", cfg.MetricsPath)
	}
	cfg.Prefix = strings.TrimRight(cfg.Prefix, "/")
	if cfg.Prefix != "" && !strings.HasPrefix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("httpapi: prefix %q must start with /", cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg}
	h.nonCanonical = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_tracker_http_noncanonical_paths_total",
		Help: "Requests refused (404) because their path was not spelled canonically (percent-encoded letters, empty or dot segments).",
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.nonCanonical); err != nil {
			return nil, fmt.Errorf("httpapi: %w", err)
		}
	}
	h.pool.New = func() any {
		return &state{buf: make([]byte, 0, 1024), hashes: make([]bittorrent.InfoHash, 0, 16)}
	}
	if cfg.Latency != nil {
		for f, fe := range [...]string{frontendHTTP: "http", frontendFastCGI: "fastcgi"} {
			for k, kind := range []string{"announce", "scrape", "other"} {
				h.obs[f][k] = cfg.Latency.WithLabelValues(fe, kind)
			}
		}
	}
	h.routes()
	return h, nil
}

// NewLatency creates the request-duration histogram shared by the HTTP, FastCGI and UDP
// frontends and registers it with reg.
func NewLatency(reg prometheus.Registerer) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "webswarm_tracker_request_duration_seconds",
		Help:    "Time to answer a request, by frontend (http, fastcgi, udp) and kind (announce, scrape, other).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
	}, []string{"frontend", "kind"})
	if reg != nil {
		reg.MustRegister(v)
	}
	return v
}

func (h *Handler) routes() {
	r := mux.NewRouter()
	r.SkipClean(true)
	serve := func(hh http.Handler) http.Handler {
		if hh == nil {
			return http.NotFoundHandler()
		}
		return hh
	}
	r.Handle("/", serve(h.cfg.Stats))
	r.Handle("/stats", serve(h.cfg.Stats))
	r.Handle("/stats.json", serve(h.cfg.StatsJSON))
	r.Handle(h.cfg.MetricsPath, serve(h.cfg.Metrics))
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if h.cfg.Health != nil {
			if err := h.cfg.Health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	r.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		if h.cfg.Favicon == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/x-icon")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(h.cfg.Favicon)
	})
	r.HandleFunc("/file", h.serveFile)
	h.router = r
}

// ServeHTTP serves a request that arrived over plain HTTP.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false) }

// FastCGI returns the handler for net/http/fcgi: the client is REMOTE_ADDR and the
// X-Forwarded-Prefix the web server sets is always believed.
func (h *Handler) FastCGI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true) })
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, fcgi bool) {
	start := time.Now()
	client, _ := h.clientIP(r, fcgi)
	var fwdPrefix string
	if v := r.Header["X-Forwarded-Prefix"]; fcgi && len(v) > 0 {
		fwdPrefix = v[0]
	}
	path := h.routePath(r.URL.Path, fwdPrefix)
	kind := kindOther
	var status, size int
	switch path {
	case "/announce", "/scrape":
		if path == "/announce" && isUpgrade(r) {
			status = h.upgrade(w, r, client, fcgi)
			break
		}
		st := h.pool.Get().(*state)
		var body []byte
		if path == "/announce" {
			kind = kindAnnounce
			body = h.announceReply(st, r.URL.RawQuery, client)
		} else {
			kind = kindScrape
			body = h.scrapeReply(st, r.URL.RawQuery)
		}
		size = h.write(w, body)
		h.pool.Put(st)
		status = http.StatusOK
	default:
		h.writeDeadline(w)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		if !canonical(r.URL) {
			// Another spelling of a route (/./metrics, //metrics, /%6detrics) could pass
			// a web server's access rule for that route: only the canonical one is served.
			h.nonCanonical.Inc()
			http.NotFound(rec, r)
			status, size = rec.status, rec.size
			break
		}
		if path != r.URL.Path {
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path, u.RawPath = path, ""
			r2.URL = &u
			r = r2
		}
		h.router.ServeHTTP(rec, r)
		status, size = rec.status, rec.size
	}
	frontend := frontendHTTP
	if fcgi {
		frontend = frontendFastCGI
	}
	h.observe(frontend, kind, start)
	if h.cfg.AccessLog != nil {
		uri := r.RequestURI
		if uri == "" { // FastCGI leaves RequestURI empty
			uri = r.URL.RequestURI()
		}
		h.cfg.AccessLog.Log(client, start, r.Method, uri, r.Proto, status, size, r.Referer(), r.UserAgent())
	}
}

// isUpgrade reports whether r asks for a WebSocket ("Upgrade: websocket", any case).
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header["Upgrade"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return true
			}
		}
	}
	return false
}

// upgrade serves a WebSocket announce and returns the status for the access log (101 when
// the connection was taken over).
func (h *Handler) upgrade(w http.ResponseWriter, r *http.Request, client netip.Addr, fcgi bool) int {
	switch {
	case fcgi:
		http.Error(w, "WebSocket announces need the tracker's HTTP port: FastCGI cannot carry a WebSocket (see the FastCGI snippets)", http.StatusBadRequest)
		return http.StatusBadRequest
	case h.cfg.WebSocket == nil:
		http.Error(w, "this tracker serves no WebSocket announces", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	rec := &hijackRecorder{recorder{ResponseWriter: w, status: http.StatusOK}}
	h.cfg.WebSocket.ServeWebSocket(rec, r, client)
	return rec.status
}

// hijackRecorder is a recorder a WebSocket library can take the connection from; a
// connection taken is logged as 101.
type hijackRecorder struct{ recorder }

// Hijack implements http.Hijacker.
func (r *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.status, r.wrote = http.StatusSwitchingProtocols, true
	}
	return c, rw, err
}

// Frontends: the first index of Handler.obs.
const (
	frontendHTTP = iota
	frontendFastCGI
)

// observe records a request's latency. Every path that serves a request (net/http, the raw
// fast path, FastCGI) calls it, so the histogram does not depend on which path served it.
func (h *Handler) observe(frontend, kind int, start time.Time) {
	if o := h.obs[frontend][kind]; o != nil {
		o.Observe(time.Since(start).Seconds())
	}
}

// routePath returns path without the mount prefix, stripped once: Config.Prefix, or else
// fwdPrefix (the first X-Forwarded-Prefix value of a FastCGI request; "" otherwise).
func (h *Handler) routePath(path, fwdPrefix string) string {
	prefix := h.cfg.Prefix
	if prefix == "" {
		prefix = strings.TrimRight(fwdPrefix, "/")
	}
	if prefix != "" && strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/') {
		path = path[len(prefix):]
	}
	if path == "" {
		path = "/"
	}
	return path
}

// canonical says whether u's path is spelled the one way a route is: no percent-encoding
// where none is needed, no empty or dot segments. A trailing slash is allowed ("/tracker/").
func canonical(u *url.URL) bool {
	if u.RawPath != "" {
		return false
	}
	p := u.Path
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p == "" || path.Clean(p) == p
}

type recorder struct {
	http.ResponseWriter
	status int
	size   int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.size += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var textPlain = []string{"text/plain"}

// writeDeadline bounds the time to write this response (see Config.WriteTimeout).
func (h *Handler) writeDeadline(w http.ResponseWriter) {
	if h.cfg.WriteTimeout > 0 {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	}
}

func (h *Handler) write(w http.ResponseWriter, body []byte) int {
	hd := w.Header()
	hd["Content-Type"] = textPlain
	// No Date header: clients ignore it on tracker replies, and formatting it costs every
	// request (a nil entry tells net/http to leave it out).
	hd["Date"] = nil
	if len(body) > 2048 {
		// net/http computes the length itself for bodies that fit its buffer.
		hd["Content-Length"] = []string{strconv.Itoa(len(body))}
		h.writeDeadline(w)
	}
	n, _ := w.Write(body)
	return n
}

// failure encodes ce's failure reason into st.buf.
func failure(st *state, ce *announce.ClientError) []byte {
	if ce.RetryIn > 0 {
		st.buf = benc.FailureRetry(st.buf[:0], ce.Reason, ce.RetryIn)
		return st.buf
	}
	st.buf = benc.Failure(st.buf[:0], ce.Reason)
	return st.buf
}

// announceReply answers an announce with raw query q from client. The reply is in st.buf:
// valid until st goes back to the pool.
func (h *Handler) announceReply(st *state, q string, client netip.Addr) []byte {
	m := h.cfg.Tracker.Metrics()
	if len(q) > h.cfg.MaxQuery {
		m.Failure(announce.CodeTooLong)
		return failure(st, announce.Errorf(announce.CodeTooLong, "request too long"))
	}
	if h.cfg.RateLimit != nil && !h.cfg.RateLimit.Allow(client) {
		m.Failure(announce.CodeRateLimited)
		return failure(st, announce.Errorf(announce.CodeRateLimited, "too many announces from your address; slow down"))
	}
	req := &st.req
	if err := parseAnnounce(q, req, &st.p); err != nil {
		ce := announce.AsClientError(err)
		m.Failure(ce.Code)
		return failure(st, ce)
	}
	req.Addr = client
	if st.p.ipGiven && h.overrideIP(client) {
		req.Addr = st.p.ip
	}
	if err := h.cfg.Tracker.Announce(req, &st.resp); err != nil {
		if ce := announce.AsClientError(err); ce != nil {
			return failure(st, ce)
		}
		h.cfg.Logger.Error("announce failed", "err", err)
		return failure(st, announce.Errorf("internal", "internal tracker error"))
	}
	st.buf = h.appendAnnounceReply(st.buf[:0], req, &st.resp, client)
	return st.buf
}

func (h *Handler) appendAnnounceReply(b []byte, req *announce.Request, resp *announce.Response, client netip.Addr) []byte {
	b = append(b, 'd')
	b = benc.KeyInt(b, "complete", int64(resp.Complete))
	b = benc.KeyInt(b, "downloaded", int64(resp.Downloaded))
	if client.IsValid() {
		b = benc.String(b, "external ip")
		if client.Is4() {
			a := client.As4()
			b = benc.Bytes(b, a[:])
		} else {
			a := client.As16()
			b = benc.Bytes(b, a[:])
		}
	}
	b = benc.KeyInt(b, "incomplete", int64(resp.Incomplete))
	b = benc.KeyInt(b, "interval", int64(resp.Interval/time.Second))
	b = benc.KeyInt(b, "min interval", int64(resp.MinInterval/time.Second))
	if resp.Peers.Format == swarm.Compact {
		b = benc.KeyBytes(b, "peers", resp.Peers.V4)
		if len(resp.Peers.V6) > 0 {
			b = benc.KeyBytes(b, "peers6", resp.Peers.V6)
		}
	} else {
		b = benc.String(b, "peers")
		b = append(b, 'l')
		b = appendDictPeers(b, resp.Peers.V4, 4, req.NoPeerID)
		b = appendDictPeers(b, resp.Peers.V6, 16, req.NoPeerID)
		b = append(b, 'e')
	}
	b = benc.KeyBytes(b, "tracker id", []byte(h.cfg.TrackerID))
	if resp.Warning != "" {
		b = benc.KeyBytes(b, "warning message", []byte(resp.Warning))
	}
	return append(b, 'e')
}

// appendDictPeers encodes WithID records (address, port, peer ID) as BEP 3 peer dictionaries.
func appendDictPeers(b, recs []byte, iplen int, noPeerID bool) []byte {
	rl := iplen + 2 + 20
	for ; len(recs) >= rl; recs = recs[rl:] {
		var ip netip.Addr
		if iplen == 4 {
			ip = netip.AddrFrom4([4]byte(recs[:4]))
		} else {
			ip = netip.AddrFrom16([16]byte(recs[:16]))
		}
		port := int64(recs[iplen])<<8 | int64(recs[iplen+1])
		var txt [46]byte
		b = append(b, 'd')
		b = benc.KeyBytes(b, "ip", ip.AppendTo(txt[:0]))
		if !noPeerID {
			b = benc.KeyBytes(b, "peer id", recs[iplen+2:rl])
		}
		b = benc.KeyInt(b, "port", port)
		b = append(b, 'e')
	}
	return b
}

// scrapeReply answers a scrape with raw query q. The reply is in st.buf, valid until st goes
// back to the pool, or is the cached full scrape, which is shared: never modify it.
func (h *Handler) scrapeReply(st *state, q string) []byte {
	m := h.cfg.Tracker.Metrics()
	if h.cfg.Scrape == ScrapeOff {
		m.Failure(announce.CodeScrapeOff)
		m.Scrape("specific", false)
		return failure(st, announce.Errorf(announce.CodeScrapeOff, "scrape is disabled on this tracker"))
	}
	if len(q) > h.cfg.MaxQuery {
		m.Failure(announce.CodeTooLong)
		m.Scrape("specific", false)
		return failure(st, announce.Errorf(announce.CodeTooLong, "request too long"))
	}
	hashes, err := parseScrape(q, st.hashes, h.cfg.MaxScrapeHashes)
	st.hashes = hashes
	if err != nil {
		ce := announce.AsClientError(err)
		m.Failure(ce.Code)
		m.Scrape("specific", false)
		return failure(st, ce)
	}
	if len(hashes) == 0 {
		if h.cfg.Scrape != ScrapeFull {
			m.Failure(announce.CodeScrapeOff)
			m.Scrape("full", false)
			return failure(st, announce.Errorf(announce.CodeScrapeOff, "full scrape is disabled; name info_hash parameters"))
		}
		body, ce := h.full.get(h)
		if ce != nil {
			m.Failure(ce.Code)
			m.Scrape("full", false)
			return failure(st, ce)
		}
		m.Scrape("full", true)
		return body
	}
	b := append(st.buf[:0], "d5:filesd"...)
	// Keys of a bencoded dictionary must be sorted and unique.
	sortHashes(hashes)
	var prev *bittorrent.InfoHash
	for i := range hashes {
		ih := &hashes[i]
		if prev != nil && *prev == *ih {
			continue
		}
		prev = ih
		c, _ := h.cfg.Tracker.Scrape(*ih)
		b = h.appendFile(b, *ih, c)
	}
	b = append(b, "ee"...)
	st.buf = b
	m.Scrape("specific", true)
	return b
}

func (h *Handler) appendFile(b []byte, ih bittorrent.InfoHash, c swarm.Counts) []byte {
	b = benc.Bytes(b, ih[:])
	b = append(b, 'd')
	b = benc.KeyInt(b, "complete", int64(c.Complete))
	b = benc.KeyInt(b, "downloaded", int64(c.Downloaded))
	b = benc.KeyInt(b, "incomplete", int64(c.Incomplete))
	if h.cfg.Name != nil {
		if name, ok := h.cfg.Name(ih); ok {
			b = benc.KeyBytes(b, "name", []byte(name))
		}
	}
	return append(b, 'e')
}

func sortHashes(hs []bittorrent.InfoHash) {
	slices.SortFunc(hs, func(a, b bittorrent.InfoHash) int { return bytes.Compare(a[:], b[:]) })
}

// fullScrape caches the full scrape's body (or its refusal) for one second: it walks every
// torrent. One request builds it; requests arriving meanwhile never wait for the build (they
// may be on an accepting goroutine, which new announces wait for): they get the previous
// body, or are told to retry.
type fullScrape struct {
	mu       sync.Mutex
	at       time.Time
	body     []byte
	tooBig   *announce.ClientError // the last build's refusal, instead of body
	building bool
}

var errFullScrapeBusy = announce.Errorf(announce.CodeScrapeBusy, "full scrape is being prepared; try again in a second")

func (f *fullScrape) get(h *Handler) ([]byte, *announce.ClientError) {
	f.mu.Lock()
	fresh := (f.body != nil || f.tooBig != nil) && time.Since(f.at) < time.Second
	if fresh || f.building {
		body, tooBig := f.body, f.tooBig
		f.mu.Unlock()
		switch {
		case body != nil:
			return body, nil
		case tooBig != nil:
			return nil, tooBig
		}
		return nil, errFullScrapeBusy
	}
	f.building = true
	f.mu.Unlock()
	body, tooBig := h.buildFullScrape()
	f.mu.Lock()
	f.body, f.tooBig, f.at, f.building = body, tooBig, time.Now(), false
	f.mu.Unlock()
	return body, tooBig
}

// buildFullScrape encodes the full scrape, or refuses it when the tracker holds more than
// MaxFullScrape torrents (having walked no more than that many).
func (h *Handler) buildFullScrape() ([]byte, *announce.ClientError) {
	type entry struct {
		ih bittorrent.InfoHash
		c  swarm.Counts
	}
	var all []entry
	limit := h.cfg.MaxFullScrape
	h.cfg.Tracker.Store().RangeTorrents(func(ih bittorrent.InfoHash, c swarm.Counts) bool {
		all = append(all, entry{ih, c})
		return limit < 0 || len(all) <= limit
	})
	if limit >= 0 && len(all) > limit {
		return nil, announce.Errorf(announce.CodeScrapeTooBig,
			"full scrape is off on this tracker (more than %d torrents); scrape with info_hash parameters", limit)
	}
	// Bencoded dictionary keys must be sorted.
	slices.SortFunc(all, func(a, b entry) int { return bytes.Compare(a.ih[:], b.ih[:]) })
	b := append(make([]byte, 0, 64+len(all)*80), "d5:filesd"...)
	allowed := h.cfg.Tracker.Config().Allowed
	for _, e := range all {
		if allowed != nil && !allowed.Allowed(e.ih) {
			continue
		}
		b = h.appendFile(b, e.ih, e.c)
	}
	b = append(b, "ee"...)
	return b, nil
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request) {
	if h.cfg.TorrentFile == nil {
		http.NotFound(w, r)
		return
	}
	hashes, err := parseScrape(r.URL.RawQuery, nil, 1)
	if err != nil || len(hashes) != 1 {
		http.Error(w, "want one info_hash parameter", http.StatusBadRequest)
		return
	}
	path, ok := h.cfg.TorrentFile(hashes[0])
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", pathBase(path)))
	http.ServeFile(w, r, path)
}

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
