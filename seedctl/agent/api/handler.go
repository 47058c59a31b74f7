package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/agent"
)

// MaxBodyBytes bounds a request body: the largest request, an add, carries two paths.
const MaxBodyBytes = 64 << 10

// errNoRoute and errMethod are the handler's own 404 and 405.
var (
	errNoRoute = errors.New("no such endpoint")
	errMethod  = errors.New("method not allowed")
)

// AddRequest is the body of POST /v1/torrents.
type AddRequest struct {
	// Torrent is the absolute path of the .torrent file, as the agent sees it.
	Torrent string `json:"torrent"`
	// Data is the absolute path of the directory holding the payload; empty means the agent's
	// default (beside the .torrent, or its --data directory).
	Data string `json:"data,omitempty"`
}

// handler serves the API for one Controller.
type handler struct {
	c   agent.Controller
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns the JSON API serving c (see README.md for the endpoints). Errors a request
// causes are answered as {"error": "..."}; those that are not the caller's fault (500) are also
// logged to log, which may be nil.
func NewHandler(c agent.Controller, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{c: c, log: log, mux: http.NewServeMux()}
	// Patterns carry no method: a known path with the wrong method must get a JSON 405, which
	// ServeMux's own method matching would answer in plain text.
	h.route("/v1/status", methods{http.MethodGet: h.status})
	h.route("/v1/torrents", methods{http.MethodGet: h.list, http.MethodPost: h.add})
	h.route("/v1/torrents/{ih}", methods{http.MethodGet: h.get, http.MethodDelete: h.remove})
	h.route("/v1/torrents/{ih}/{action}", methods{http.MethodPost: h.action})
	h.route("/v1/rescan", methods{http.MethodPost: h.rescan})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, fmt.Errorf("%s: %w", r.URL.Path, errNoRoute))
	})
	return h
}

// methods maps an HTTP method to what serves it on one path.
type methods map[string]func(http.ResponseWriter, *http.Request) error

func (h *handler) route(pattern string, m methods) {
	allow := make([]string, 0, len(m))
	for k := range m {
		allow = append(allow, k)
	}
	slices.Sort(allow)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		f, ok := m[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			h.fail(w, r, fmt.Errorf("%s %s: %w (allowed: %s)", r.Method, r.URL.Path, errMethod, strings.Join(allow, ", ")))
			return
		}
		if err := f(w, r); err != nil {
			h.fail(w, r, err)
		}
	})
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ServeMux would redirect a path with "." or ".." segments or doubled slashes to its clean
	// form; nothing legitimate sends one, so it is refused rather than followed.
	if p := r.URL.Path; !strings.HasPrefix(p, "/") || (path.Clean(p) != p && path.Clean(p)+"/" != p) {
		h.fail(w, r, fmt.Errorf("path %q is not clean: %w", p, agent.ErrInvalid))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	h.mux.ServeHTTP(w, r)
}

func (h *handler) status(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, h.c.Status())
	return nil
}

func (h *handler) list(w http.ResponseWriter, _ *http.Request) error {
	l := h.c.List()
	if l == nil {
		l = []agent.TorrentInfo{} // an empty array, never null
	}
	for i := range l {
		finite(&l[i])
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) error {
	ih, err := infoHash(r)
	if err != nil {
		return err
	}
	ti, err := h.c.Get(ih)
	if err != nil {
		return err
	}
	finite(&ti)
	writeJSON(w, http.StatusOK, ti)
	return nil
}

// finite zeroes a NaN or infinite ratio or progress (a zero-length payload), which JSON cannot
// carry: one odd torrent must not turn the whole list into a 500.
func finite(ti *agent.TorrentInfo) {
	for _, f := range []*float64{&ti.Ratio, &ti.Progress} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
}

func (h *handler) add(w http.ResponseWriter, r *http.Request) error {
	var req AddRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ti, err := h.c.Add(r.Context(), req.Torrent, req.Data)
	if err != nil {
		return err
	}
	finite(&ti)
	w.Header().Set("Location", "/v1/torrents/"+ti.InfoHash)
	writeJSON(w, http.StatusCreated, ti)
	return nil
}

// validate requires absolute, NUL-free paths: the agent runs in another working directory than
// the caller, so a relative path would name another file (the Client makes paths absolute).
func (req *AddRequest) validate() error {
	if req.Torrent == "" {
		return fmt.Errorf("\"torrent\" is required: %w", agent.ErrInvalid)
	}
	for _, p := range []struct{ name, v string }{{"torrent", req.Torrent}, {"data", req.Data}} {
		if p.v == "" {
			continue
		}
		if strings.IndexByte(p.v, 0) >= 0 || !filepath.IsAbs(p.v) {
			return fmt.Errorf("%q %q: want an absolute path: %w", p.name, p.v, agent.ErrInvalid)
		}
	}
	req.Torrent = filepath.Clean(req.Torrent)
	if req.Data != "" {
		req.Data = filepath.Clean(req.Data)
	}
	return nil
}

func (h *handler) remove(w http.ResponseWriter, r *http.Request) error {
	ih, err := infoHash(r)
	if err != nil {
		return err
	}
	if err := h.c.Remove(ih); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// action serves pause, resume and verify, answering with the torrent as it is afterwards.
func (h *handler) action(w http.ResponseWriter, r *http.Request) error {
	var do func(bittorrent.InfoHash) error
	code := http.StatusOK
	switch r.PathValue("action") {
	case "pause":
		do = h.c.Pause
	case "resume":
		do = h.c.Resume
	case "verify":
		do, code = h.c.Verify, http.StatusAccepted // queued, not done
	default:
		return fmt.Errorf("%s: %w", r.URL.Path, errNoRoute)
	}
	ih, err := infoHash(r)
	if err != nil {
		return err
	}
	if err := do(ih); err != nil {
		return err
	}
	ti, err := h.c.Get(ih)
	if err != nil {
		return err
	}
	finite(&ti)
	writeJSON(w, code, ti)
	return nil
}

func (h *handler) rescan(w http.ResponseWriter, _ *http.Request) error {
	h.c.Rescan()
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// infoHash parses the {ih} path segment.
func infoHash(r *http.Request) (bittorrent.InfoHash, error) {
	ih, err := bittorrent.ParseInfoHash(r.PathValue("ih"))
	if err != nil {
		return ih, fmt.Errorf("%w: %w", agent.ErrInvalid, err)
	}
	return ih, nil
}

// decodeBody decodes exactly one JSON object with no unknown fields from body.
func decodeBody(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return err
		}
		return fmt.Errorf("request body: %w: %w", agent.ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return err
		}
		return fmt.Errorf("request body: %w: data after the JSON object", agent.ErrInvalid)
	}
	return nil
}

// statusOf classifies err into the status it is answered with.
func statusOf(err error) int {
	switch {
	case errors.Is(err, agent.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, agent.ErrUnknown), errors.Is(err, errNoRoute):
		return http.StatusNotFound
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, agent.ErrConflict):
		return http.StatusConflict
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		h.log.Error("control API", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, code, err.Error())
}

// errorBody is how every error is answered.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a NaN or Inf that finite did not catch can do this: a 500 rather than half a body.
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the reply failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
