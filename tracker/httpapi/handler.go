package httpapi

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
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
