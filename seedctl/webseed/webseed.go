package webseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
)

// Errors Fetch and New wrap; classify with errors.Is.
var (
	// ErrNoRange: the server ignored the Range header and sent a whole file too large to
	// take the slice from. Such a seed is useless for this torrent.
	ErrNoRange = errors.New("web seed ignores Range requests")
	// ErrNotFound: the server has no file at the URL (404 or 410).
	ErrNotFound = errors.New("web seed file not found")
	// ErrShort: the server has fewer bytes than the torrent says (416, a clipped range, a
	// body that ends early).
	ErrShort = errors.New("web seed file shorter than the torrent's")
	// ErrStatus: any other unexpected HTTP status; errors.As with *StatusError gives the code.
	ErrStatus = errors.New("unexpected HTTP status from web seed")
	// ErrBadResponse: a 206 whose Content-Range is malformed or does not start where asked.
	ErrBadResponse = errors.New("bad web seed response")
	// ErrBadURL: New was given a URL that is not an absolute http or https URL.
	ErrBadURL = errors.New("bad web seed URL")
	// ErrBadRange: Fetch was asked for bytes outside the torrent.
	ErrBadRange = errors.New("range outside the torrent")
)

// StatusError is an unexpected HTTP status; it matches ErrStatus with errors.Is.
type StatusError struct {
	Code int
	URL  string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %s: HTTP %d %s", ErrStatus, e.URL, e.Code, http.StatusText(e.Code))
}

// Is makes errors.Is(err, ErrStatus) true for a *StatusError.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// SmallFile is the largest file whose whole body Fetch accepts from a server that ignores
// Range (a 200 answer) to cut a slice from: reading up to 4 MiB to use a part is cheaper than
// losing the seed; for larger files every request would move the whole file.
const SmallFile = 4 << 20

// DefaultMaxConns is Options.MaxConns when unset: a handful of connections keep one server
// busy without looking like an attack to it.
const DefaultMaxConns = 4

// Options configures a Seed.
type Options struct {
	// Client sends the requests. Nil: a client of the Seed's own (keep-alive, at most
	// MaxConns connections to the server, 30 s to the response headers), released by Close.
	Client *http.Client
	// MaxConns bounds the requests in flight at once for this Seed; 0 means DefaultMaxConns.
	MaxConns int
	// UserAgent is sent when set.
	UserAgent string
}

// Seed is one web seed of one torrent. It is safe for concurrent use.
type Seed struct {
	raw    string
	layout *storage.Layout
	urls   []string // request URL by layout file; "" for pad files
	client *http.Client
	own    *http.Transport // set when client is ours
	sem    chan struct{}
	ua     string
}

// New returns the Seed for rawURL, one entry of torrent t's url-list.
func New(rawURL string, t *metafile.Torrent, o Options) (*Seed, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an absolute http(s) URL", ErrBadURL, rawURL)
	}
	if t == nil || t.Layout == nil {
		return nil, errors.New("webseed: torrent without a file layout")
	}
	u.Fragment, u.RawFragment = "", ""
	s := &Seed{raw: rawURL, layout: t.Layout, urls: make([]string, len(t.Layout.Files)), ua: o.UserAgent}
	base := u.EscapedPath()
	for i, f := range t.Layout.Files {
		switch {
		case f.Pad:
			continue
		case t.Single && !strings.HasSuffix(base, "/"):
			s.urls[i] = u.String()
			continue
		}
		var b strings.Builder
		b.WriteString(base)
		if !strings.HasSuffix(base, "/") {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(t.Name))
		if !t.Single {
			for _, c := range f.Path {
				b.WriteByte('/')
				b.WriteString(url.PathEscape(c))
			}
		}
		fu := *u
		fu.RawPath = b.String()
		if fu.Path, err = url.PathUnescape(fu.RawPath); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadURL, rawURL, err)
		}
		s.urls[i] = fu.String()
	}
	n := o.MaxConns
	if n <= 0 {
		n = DefaultMaxConns
	}
	s.sem = make(chan struct{}, n)
	s.client = o.Client
	if s.client == nil {
		s.own = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   n,
			MaxConnsPerHost:       n,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			DisableCompression:    true,
		}
		s.client = &http.Client{Transport: s.own}
	}
	return s, nil
}

// URL is the web seed's URL as the torrent gave it.
func (s *Seed) URL() string { return s.raw }

// Close releases the idle connections of the Seed's own client (none when Options.Client was
// given). Fetch may still be called afterwards; it dials again.
func (s *Seed) Close() {
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
}

// Fetch fills dst with the torrent's stream bytes [off, off+len(dst)): one Range GET per file
// span, in parallel up to MaxConns (shared with concurrent Fetch calls), pad files zero-filled.
// It returns how many bytes at the start of dst it filled: len(dst) when err is nil; on
// error, what arrived before it (a caller can keep the whole pieces in there). It returns
// when every request it started has ended. Give ctx a deadline: a server that stalls
// mid-body is stopped only by it.
func (s *Seed) Fetch(ctx context.Context, dst []byte, off int64) (int, error) {
	if off < 0 || off > s.layout.Total || int64(len(dst)) > s.layout.Total-off {
		return 0, fmt.Errorf("webseed: bytes [%d, %d) of %d: %w", off, off+int64(len(dst)), s.layout.Total, ErrBadRange)
	}
	spans := s.layout.Spans(nil, off, int64(len(dst)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	requests := 0
	for _, sp := range spans {
		if !s.layout.Files[sp.File].Pad {
			requests++
		}
	}
	filled := make([]int, len(spans)) // bytes of each span in dst (written before wg.Done)
	pos := int64(0)
spans:
	for k, sp := range spans {
		part := dst[pos : pos+sp.Length]
		pos += sp.Length
		if s.layout.Files[sp.File].Pad {
			clear(part)
			filled[k] = len(part)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			fail(ctx.Err())
			break spans
		}
		if err := ctx.Err(); err != nil {
			<-s.sem
			fail(err)
			break
		}
		if requests == 1 { // the common case: no goroutine
			n, err := s.get(ctx, sp, part)
			filled[k] = n
			<-s.sem
			if err != nil {
				fail(err)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.sem }()
			n, err := s.get(ctx, sp, part)
			filled[k] = n
			if err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		return len(dst), nil
	}
	got := 0
	for k, sp := range spans {
		got += filled[k]
		if int64(filled[k]) < sp.Length {
			break
		}
	}
	return got, firstErr
}

// get fills dst with bytes [sp.Offset, sp.Offset+len(dst)) of file sp.File, and returns how
// many it filled from the start.
func (s *Seed) get(ctx context.Context, sp storage.Span, dst []byte) (int, error) {
	u := s.urls[sp.File]
	first, last := sp.Offset, sp.Offset+sp.Length-1
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("webseed: %w: %v", ErrBadURL, err)
	}
	rng := make([]byte, 0, 48)
	rng = append(rng, "bytes="...)
	rng = strconv.AppendInt(rng, first, 10)
	rng = append(rng, '-')
	rng = strconv.AppendInt(rng, last, 10)
	req.Header.Set("Range", string(rng))
	req.Header.Set("Accept-Encoding", "identity")
	if s.ua != "" {
		req.Header.Set("User-Agent", s.ua)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webseed: %w", err)
	}
	defer closeBody(resp.Body)
	size := s.layout.Files[sp.File].Length
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkContentRange(resp.Header.Get("Content-Range"), first, last, size); err != nil {
			return 0, fmt.Errorf("webseed: %s bytes %d-%d: %w", u, first, last, err)
		}
		return readBody(resp.Body, dst, u, first)
	case http.StatusOK:
		if !(first == 0 && sp.Length == size) && size > SmallFile {
			return 0, fmt.Errorf("webseed: %s answered a Range request with the whole %d-byte file: %w", u, size, ErrNoRange)
		}
		if resp.ContentLength >= 0 && resp.ContentLength < last+1 {
			return 0, fmt.Errorf("webseed: %s has %d bytes, torrent says %d: %w", u, resp.ContentLength, size, ErrShort)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, first); err != nil {
			return 0, fmt.Errorf("webseed: %s: skipping to byte %d: %w (%v)", u, first, ErrShort, err)
		}
		return readBody(resp.Body, dst, u, first)
	case http.StatusNotFound, http.StatusGone:
		return 0, fmt.Errorf("webseed: %s: HTTP %d: %w", u, resp.StatusCode, ErrNotFound)
	case http.StatusRequestedRangeNotSatisfiable:
		return 0, fmt.Errorf("webseed: %s: bytes %d-%d not satisfiable: %w", u, first, last, ErrShort)
	default:
		return 0, &StatusError{Code: resp.StatusCode, URL: u}
	}
}

// readBody fills dst from body, reading no further, and returns how much it filled.
func readBody(body io.Reader, dst []byte, u string, first int64) (int, error) {
	n, err := io.ReadFull(body, dst)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return n, fmt.Errorf("webseed: %s: body ended after %d of %d bytes from %d: %w", u, n, len(dst), first, ErrShort)
	default:
		return n, fmt.Errorf("webseed: %s: reading body: %w", u, err)
	}
}

// closeBody reads a little of what is left, so that a connection whose body was consumed up to
// its end goes back to the pool, then closes the body (dropping the connection if more is left).
func closeBody(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 4<<10)
	_ = b.Close()
}

// checkContentRange checks a 206's "bytes first-last/size" (size may be "*") against what
// was asked: it must start at first and end at last; a range clipped short or a smaller
// total means the server's file is shorter than the torrent's.
func checkContentRange(h string, first, last, size int64) error {
	spec, ok := strings.CutPrefix(h, "bytes ")
	rng, total, ok2 := strings.Cut(spec, "/")
	a, b, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return fmt.Errorf("%w: Content-Range %q", ErrBadResponse, h)
	}
	ra, err1 := strconv.ParseInt(a, 10, 64)
	rb, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || ra < 0 || rb < ra {
		return fmt.Errorf("%w: Content-Range %q", ErrBadResponse, h)
	}
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || n <= rb {
			return fmt.Errorf("%w: Content-Range %q", ErrBadResponse, h)
		}
		if n < size {
			return fmt.Errorf("%w: server's file has %d bytes, the torrent's %d", ErrShort, n, size)
		}
	}
	switch {
	case ra != first:
		return fmt.Errorf("%w: Content-Range %q, asked for %d-%d", ErrBadResponse, h, first, last)
	case rb < last:
		return fmt.Errorf("%w: Content-Range %q, asked for %d-%d", ErrShort, h, first, last)
	case rb > last:
		return fmt.Errorf("%w: Content-Range %q, asked for %d-%d", ErrBadResponse, h, first, last)
	}
	return nil
}
