package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/agent"
)

// ErrNoAgent means nothing listens where the Client looks for the agent.
var ErrNoAgent = errors.New("no agent running")

// ErrAmbiguous means a torrent reference matches more than one torrent.
var ErrAmbiguous = errors.New("ambiguous torrent")

// DefaultTimeout bounds one request of a Client made with a zero timeout.
const DefaultTimeout = 30 * time.Second

// maxReplyBytes bounds a reply body the Client reads (a list of 100,000 torrents fits).
const maxReplyBytes = 256 << 20

// Client talks to an agent's control API.
type Client struct {
	hc     *http.Client
	base   string // scheme://host, no trailing slash
	token  string
	target string // where the agent was looked for, for messages
}

// NewUnixClient returns a Client for the agent listening on the unix socket at path. timeout
// bounds each request; 0 means DefaultTimeout.
func NewUnixClient(path string, timeout time.Duration) *Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{hc: newHTTPClient(tr, timeout), base: "http://agent", target: path}
}

// NewTCPClient returns a Client for the agent at baseURL ("http://127.0.0.1:PORT"), sending
// token as bearer token. The host must be a loopback address or localhost: the token travels
// in clear text.
func NewTCPClient(baseURL string, token []byte, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("--agent %q: %w", baseURL, err)
	}
	if u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("--agent %q: want http://127.0.0.1:PORT: %w", baseURL, agent.ErrInvalid)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--agent %q: the control API is served on loopback only (127.0.0.1, ::1, localhost): %w", baseURL, agent.ErrInvalid)
		}
	}
	if len(token) == 0 {
		return nil, fmt.Errorf("--agent %q needs a token (--token-file): %w", baseURL, agent.ErrInvalid)
	}
	tr := &http.Transport{
		Proxy:           nil, // never send the token through an HTTP_PROXY
		DialContext:     (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	base := u.Scheme + "://" + u.Host
	return &Client{hc: newHTTPClient(tr, timeout), base: base, token: string(token), target: base}, nil
}

func newHTTPClient(tr *http.Transport, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// The API never redirects; following one could carry the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Target is where the Client looks for the agent: a socket path or a base URL.
func (c *Client) Target() string { return c.target }

// Close releases the Client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Error is an error reply of the API. It wraps the sentinel its status stands for:
// agent.ErrInvalid (400, 405, 413), agent.ErrUnknown (404), agent.ErrConflict (409),
// ErrUnauthorized (401), ErrForbidden (403).
type Error struct {
	Status  int    // HTTP status
	Message string // the reply's "error"
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel error of e's status, or nil.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		return agent.ErrInvalid
	case http.StatusNotFound:
		return agent.ErrUnknown
	case http.StatusConflict:
		return agent.ErrConflict
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden, http.StatusMisdirectedRequest:
		return ErrForbidden
	}
	return nil
}

// Status returns the agent's summary.
func (c *Client) Status(ctx context.Context) (agent.Status, error) {
	var s agent.Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// List returns every torrent, sorted by name, then info-hash.
func (c *Client) List(ctx context.Context) ([]agent.TorrentInfo, error) {
	var l []agent.TorrentInfo
	return l, c.do(ctx, http.MethodGet, "/v1/torrents", nil, &l)
}

// Get returns one torrent.
func (c *Client) Get(ctx context.Context, ih bittorrent.InfoHash) (agent.TorrentInfo, error) {
	var ti agent.TorrentInfo
	return ti, c.do(ctx, http.MethodGet, "/v1/torrents/"+ih.String(), nil, &ti)
}

// Add asks the agent to seed the .torrent at torrentPath with its payload in dataDir ("" for the
// agent's default). Relative paths are made absolute here, against this process's directory.
func (c *Client) Add(ctx context.Context, torrentPath, dataDir string) (agent.TorrentInfo, error) {
	var ti agent.TorrentInfo
	req := AddRequest{Torrent: torrentPath, Data: dataDir}
	for _, p := range []*string{&req.Torrent, &req.Data} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return ti, fmt.Errorf("add %s: %w", *p, err)
		}
		*p = abs
	}
	body, err := json.Marshal(req)
	if err != nil {
		return ti, err
	}
	return ti, c.do(ctx, http.MethodPost, "/v1/torrents", body, &ti)
}

// Remove stops seeding a torrent; the agent never deletes its files.
func (c *Client) Remove(ctx context.Context, ih bittorrent.InfoHash) error {
	return c.do(ctx, http.MethodDelete, "/v1/torrents/"+ih.String(), nil, nil)
}

// Pause pauses a torrent and returns it as it is afterwards.
func (c *Client) Pause(ctx context.Context, ih bittorrent.InfoHash) (agent.TorrentInfo, error) {
	return c.action(ctx, ih, "pause")
}

// Resume resumes a paused torrent and returns it as it is afterwards.
func (c *Client) Resume(ctx context.Context, ih bittorrent.InfoHash) (agent.TorrentInfo, error) {
	return c.action(ctx, ih, "resume")
}

// Verify queues a full re-check of a torrent's payload and returns the torrent.
func (c *Client) Verify(ctx context.Context, ih bittorrent.InfoHash) (agent.TorrentInfo, error) {
	return c.action(ctx, ih, "verify")
}

// Rescan asks the agent to rescan its directory now, as SIGHUP does.
func (c *Client) Rescan(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/rescan", nil, nil)
}

func (c *Client) action(ctx context.Context, ih bittorrent.InfoHash, what string) (agent.TorrentInfo, error) {
	var ti agent.TorrentInfo
	return ti, c.do(ctx, http.MethodPost, "/v1/torrents/"+ih.String()+"/"+what, nil, &ti)
}

// Find resolves ref, which names a torrent by info-hash, unique info-hash prefix or name (see
// Match). A full info-hash costs one request; anything else lists all torrents.
func (c *Client) Find(ctx context.Context, ref string) (agent.TorrentInfo, error) {
	if ih, err := bittorrent.ParseInfoHash(ref); err == nil {
		ti, err := c.Get(ctx, ih)
		if errors.Is(err, agent.ErrUnknown) {
			// A 40-hex name is possible, if odd: fall back to matching names.
			if l, lerr := c.List(ctx); lerr == nil {
				return Match(l, ref)
			}
		}
		return ti, err
	}
	l, err := c.List(ctx)
	if err != nil {
		return agent.TorrentInfo{}, err
	}
	return Match(l, ref)
}

// minPrefix is the shortest info-hash prefix Match accepts, so that a short name made of hex
// letters ("bad", "cafe") is not taken for a hash.
const minPrefix = 4

// Match returns the one torrent in l that ref names: its info-hash, a prefix of at least four
// hex digits of it, or its exact name. No match wraps agent.ErrUnknown; several wrap
// ErrAmbiguous and list them.
func Match(l []agent.TorrentInfo, ref string) (agent.TorrentInfo, error) {
	var found []int
	prefix := ""
	if len(ref) >= minPrefix && len(ref) <= 40 && isHex(ref) {
		prefix = strings.ToLower(ref)
	}
	for i, t := range l {
		if t.Name == ref || (prefix != "" && strings.HasPrefix(t.InfoHash, prefix)) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return agent.TorrentInfo{}, fmt.Errorf("%q: %w (name it by info-hash, a unique info-hash prefix, or its name; seedctl list shows them)", ref, agent.ErrUnknown)
	case 1:
		return l[found[0]], nil
	}
	var b strings.Builder
	for n, i := range found {
		if n == 5 {
			fmt.Fprintf(&b, ", and %d more", len(found)-n)
			break
		}
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", l[i].InfoHash, l[i].Name)
	}
	return agent.TorrentInfo{}, fmt.Errorf("%q matches %d torrents: %s: %w; use more of the info-hash", ref, len(found), b.String(), ErrAmbiguous)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s + s[:len(s)%2]) // an odd length is a valid prefix too
	return err == nil
}

// do sends one request and decodes a 2xx reply into out (if not nil), or returns the error reply.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, maxReplyBytes)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(lr, 64<<10))
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s answered %s", c.target, resp.Status)
		}
		return &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, lr)
		return nil
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return fmt.Errorf("control API %s %s: reading the reply: %w", method, path, err)
	}
	return nil
}

// connError says why the agent could not be reached, wrapping ErrNoAgent when nothing listens.
func (c *Client) connError(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w on %s", ErrNoAgent, c.target)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot connect to the agent on %s: %w (is your user in the agent's group?)", c.target, err)
	}
	return fmt.Errorf("control API on %s: %w", c.target, err)
}
