package announcer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// event is an announce event, numbered as in BEP 15.
type event uint32

const (
	evNone event = iota
	evCompleted
	evStarted
	evStopped
)

func (e event) String() string {
	switch e {
	case evCompleted:
		return "completed"
	case evStarted:
		return "started"
	case evStopped:
		return "stopped"
	}
	return "none"
}

// request is one announce's variable part; the rest comes from the Config.
type request struct {
	event     event
	progress  Progress
	numWant   int
	key       uint32
	trackerID string // echoed to HTTP trackers
	// sent is set once the announce has gone out (or may have): a tracker may count us
	// from then on, answer or not.
	sent atomic.Bool
}

// reply is an announce's result, whichever the protocol.
type reply struct {
	interval, minInterval         time.Duration // 0 when the tracker gave none
	seeders, leechers, downloaded int
	peers                         []netip.AddrPort
	warning, trackerID            string
}

// appendEscaped appends b percent-escaped byte for byte: every byte outside RFC 3986's
// unreserved set becomes %XX, so binary info-hashes and peer IDs arrive exactly.
func appendEscaped(dst []byte, b []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			dst = append(dst, c)
		default:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

// appendQuerySep appends what separates base's existing query from new parameters.
func appendQuerySep(b []byte, base string) []byte {
	switch {
	case !strings.Contains(base, "?"):
		return append(b, '?')
	case strings.HasSuffix(base, "?"), strings.HasSuffix(base, "&"):
		return b
	}
	return append(b, '&')
}

// announceURL returns base with the announce parameters appended, in libtorrent's order.
func (a *Announcer) announceURL(base string, r *request) string {
	b := make([]byte, 0, len(base)+256)
	b = append(b, base...)
	b = appendQuerySep(b, base)
	b = append(b, "info_hash="...)
	b = appendEscaped(b, a.cfg.InfoHash[:])
	b = append(b, "&peer_id="...)
	b = appendEscaped(b, a.cfg.PeerID[:])
	b = append(b, "&port="...)
	b = strconv.AppendUint(b, uint64(a.cfg.Port), 10)
	b = append(b, "&uploaded="...)
	b = strconv.AppendInt(b, max(r.progress.Uploaded, 0), 10)
	b = append(b, "&downloaded="...)
	b = strconv.AppendInt(b, max(r.progress.Downloaded, 0), 10)
	b = append(b, "&left="...)
	b = strconv.AppendInt(b, max(r.progress.Left, 0), 10)
	b = fmt.Appendf(b, "&key=%08X", r.key)
	if r.event != evNone {
		b = append(b, "&event="...)
		b = append(b, r.event.String()...)
	}
	b = append(b, "&numwant="...)
	b = strconv.AppendInt(b, int64(r.numWant), 10)
	b = append(b, "&compact=1&no_peer_id=1"...)
	if r.trackerID != "" {
		b = append(b, "&trackerid="...)
		b = appendEscaped(b, []byte(r.trackerID))
	}
	if a.cfg.IP != "" {
		b = append(b, "&ip="...)
		b = appendEscaped(b, []byte(a.cfg.IP))
	}
	return string(b)
}

// httpGet fetches rawURL and returns its body, bounded by MaxReplySize. A status other than
// 200 is a *StatusError (with the body's failure reason, if it has one).
func httpGet(ctx context.Context, c *http.Client, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	req.Header.Set("User-Agent", "webswarm-seedctl")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxReplySize {
		return nil, ErrReplyTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	if len(body) > MaxReplySize {
		return nil, ErrReplyTooLarge
	}
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Code: resp.StatusCode}
		var f struct {
			Reason string `bencode:"failure reason"`
		}
		if bencode.Unmarshal(body, &f) == nil {
			se.Reason = f.Reason
		}
		return nil, se
	}
	return body, nil
}

// unmarshal decodes a bencoded reply into v. Bytes after the value are tolerated (some
// trackers end their replies with a newline).
func unmarshal(body []byte, v any) error {
	err := bencode.Unmarshal(body, v)
	var trailing bencode.ErrUnusedTrailingBytes
	if err != nil && !errors.As(err, &trailing) {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return nil
}

// httpReply is a BEP 3 announce reply, as far as a client uses it.
type httpReply struct {
	FailureReason *string       `bencode:"failure reason"`
	Warning       string        `bencode:"warning message"`
	Interval      int64         `bencode:"interval"`
	MinInterval   int64         `bencode:"min interval"`
	TrackerID     string        `bencode:"tracker id"`
	Complete      int64         `bencode:"complete"`
	Incomplete    int64         `bencode:"incomplete"`
	Downloaded    int64         `bencode:"downloaded"`
	Peers         bencode.Bytes `bencode:"peers"`
	Peers6        string        `bencode:"peers6"`
}

// parseHTTPReply parses an announce reply. A failure reason is a *FailureError. self is our
// peer ID, dropped from dictionary peer lists.
func parseHTTPReply(body []byte, self [20]byte) (*reply, error) {
	var h httpReply
	if err := unmarshal(body, &h); err != nil {
		return nil, err
	}
	if h.FailureReason != nil {
		return nil, &FailureError{Reason: *h.FailureReason}
	}
	r := &reply{
		interval:    seconds(h.Interval),
		minInterval: seconds(h.MinInterval),
		seeders:     clampCount(h.Complete),
		leechers:    clampCount(h.Incomplete),
		downloaded:  clampCount(h.Downloaded),
		warning:     h.Warning,
		trackerID:   h.TrackerID,
	}
	switch p := []byte(h.Peers); {
	case len(p) == 0:
	case p[0] == 'l':
		// Into any: the library fails to decode a list into []any (v1.62.0).
		var list any
		if err := bencode.Unmarshal(p, &list); err != nil {
			return nil, fmt.Errorf("%w: peers: %w", ErrBadReply, err)
		}
		l, _ := list.([]any)
		r.peers = appendDict(r.peers, l, self)
	case p[0] >= '0' && p[0] <= '9':
		var s []byte
		if err := bencode.Unmarshal(p, &s); err != nil {
			return nil, fmt.Errorf("%w: peers: %w", ErrBadReply, err)
		}
		r.peers = appendCompact(r.peers, s, 4)
	default:
		return nil, fmt.Errorf("%w: peers is neither a string nor a list", ErrBadReply)
	}
	r.peers = appendCompact(r.peers, []byte(h.Peers6), 16)
	return r, nil
}

// seconds converts a tracker's interval to a duration: 0 for none or a negative value,
// at most maxInterval.
func seconds(s int64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(min(s, int64(maxInterval/time.Second))) * time.Second
}

// clampCount turns a tracker's count into an int, negative values into 0.
func clampCount(n int64) int { return int(min(max(n, 0), 1<<31-1)) }

// httpAnnounce sends one announce to an HTTP tracker.
func (a *Announcer) httpAnnounce(ctx context.Context, base string, r *request) (*reply, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			r.sent.Store(true)
		}
	}})
	body, err := httpGet(ctx, a.cfg.HTTP, a.announceURL(base, r))
	if err != nil {
		return nil, err
	}
	return parseHTTPReply(body, a.cfg.PeerID)
}
