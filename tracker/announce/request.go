package announce

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// Request is one parsed announce.
type Request struct {
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	// Addr is the address to register the peer under: the client's address, or its ip=
	// override where policy allowed it (the frontend decides).
	Addr       netip.Addr
	Port       uint16
	Uploaded   uint64
	Downloaded uint64
	Left       uint64
	Event      swarm.Event
	// NumWant is the client's numwant, or -1 when it sent none.
	NumWant int
	// Compact asks for compact peer lists (BEP 23); NoPeerID drops peer IDs from dictionary
	// lists. Only HTTP uses them; UDP replies are always compact. Announce sets NoPeerID
	// when the tracker's policy gives out no peer IDs (Config.PeerIDs).
	Compact  bool
	NoPeerID bool
	// Key is the client's key (raw bytes, possibly empty).
	Key []byte
}

// Response is the tracker's answer. Frontends keep one per worker and pass it to every
// announce: the peer buffers are reused.
type Response struct {
	Interval    time.Duration
	MinInterval time.Duration
	swarm.Counts
	Peers swarm.PeerList
	// Warning, when set, is sent as BEP 3's "warning message".
	Warning string

	// ann is the store request, kept here so it does not escape to the heap per announce.
	ann swarm.Announce
}

// ClientError is a refusal caused by the request: it is sent to the client as the failure
// reason and counted under Code, a short stable label (bounded set, safe for metrics).
type ClientError struct {
	Code   string
	Reason string
	// RetryIn, when positive, is BEP 31's "retry in": minutes before the client should try
	// again (a temporary condition on the tracker's side).
	RetryIn int
}

func (e *ClientError) Error() string { return e.Reason }

// Errorf returns a ClientError with the given code and a formatted reason.
func Errorf(code, format string, args ...any) *ClientError {
	return &ClientError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Failure codes used by this package and by the frontends' parsers.
const (
	CodeBadInfoHash   = "bad_info_hash"
	CodeBadPeerID     = "bad_peer_id"
	CodeBadPort       = "bad_port"
	CodeBadEvent      = "bad_event"
	CodeBadNumber     = "bad_number"
	CodeBadIP         = "bad_ip"
	CodeBadRequest    = "bad_request"
	CodeNotAllowed    = "not_allowed"
	CodePeerIDTaken   = "peer_id_taken"
	CodeIPChanged     = "ip_changed"
	CodeTrackerFull   = "tracker_full"
	CodeTorrentFull   = "torrent_full"
	CodePeersFull     = "peers_full"
	CodeIPFull        = "ip_full"
	CodeScrapeTooBig  = "full_scrape_too_big"
	CodeScrapeBusy    = "full_scrape_busy"
	CodeRateLimited   = "rate_limited"
	CodeTooLong       = "request_too_long"
	CodeScrapeOff     = "scrape_disabled"
	CodeTooManyHashes = "too_many_hashes"
	CodeStoreDown     = "store_unavailable"
)

// FailureCodes lists every code, for pre-creating metric series.
func FailureCodes() []string {
	return []string{CodeBadInfoHash, CodeBadPeerID, CodeBadPort, CodeBadEvent, CodeBadNumber, CodeBadIP,
		CodeBadRequest, CodeNotAllowed, CodePeerIDTaken, CodeIPChanged, CodeTrackerFull, CodeTorrentFull, CodePeersFull, CodeIPFull,
		CodeRateLimited, CodeTooLong, CodeScrapeOff, CodeScrapeTooBig, CodeScrapeBusy, CodeTooManyHashes, CodeStoreDown}
}

// NotAuthorized is bttrack's reason for a torrent outside the allowed list (clients and users
// recognise the wording).
const NotAuthorized = "Requested download is not authorized for use with this tracker."

// AsClientError returns err's ClientError, or nil when err is not a client's mistake.
func AsClientError(err error) *ClientError {
	var ce *ClientError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// ParseEvent maps the announce event parameter to an Event ("" and "empty" are None).
func ParseEvent(s []byte) (swarm.Event, error) {
	switch string(s) {
	case "", "empty":
		return swarm.None, nil
	case "started":
		return swarm.Started, nil
	case "completed":
		return swarm.Completed, nil
	case "stopped":
		return swarm.Stopped, nil
	case "paused": // BEP 21: a partial seed pausing; it stays in the swarm.
		return swarm.None, nil
	}
	return swarm.None, Errorf(CodeBadEvent, "unknown event %q", string(s)) // a copy: s must not escape
}
