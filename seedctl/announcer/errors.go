package announcer

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors an announce or a scrape may wrap.
var (
	// ErrFailure is matched by every *FailureError: the tracker refused the request.
	ErrFailure = errors.New("tracker failure")
	// ErrBadReply: the reply is not the bencoded dictionary or BEP 15 packet expected.
	ErrBadReply = errors.New("malformed tracker reply")
	// ErrReplyTooLarge: the reply exceeds MaxReplySize. It also matches ErrBadReply.
	ErrReplyTooLarge = fmt.Errorf("tracker reply over %d bytes: %w", MaxReplySize, ErrBadReply)
	// ErrNoReply: a UDP tracker did not answer any retransmission.
	ErrNoReply = errors.New("no reply from UDP tracker")
	// ErrBadURL: a tracker URL New or Scrape cannot use.
	ErrBadURL = errors.New("unusable tracker URL")
	// ErrNoScrape: the announce URL has no scrape form (BEP 48: its last path component does
	// not begin with "announce").
	ErrNoScrape = errors.New("tracker URL has no scrape URL")
	// ErrNotInScrape: the scrape reply does not list the torrent (BEP 48: the tracker does
	// not know it).
	ErrNotInScrape = errors.New("torrent not in scrape reply")
)

// FailureError is a tracker's refusal: a bencoded "failure reason" (HTTP) or an error packet
// (BEP 15 action 3). errors.Is(err, ErrFailure) reports true for it.
type FailureError struct {
	Reason string
}

func (e *FailureError) Error() string { return "tracker failure: " + e.Reason }

// Is makes errors.Is(err, ErrFailure) true.
func (e *FailureError) Is(target error) bool { return target == ErrFailure }

// StatusError is an HTTP reply with a status other than 200. Reason holds the bencoded
// failure reason the body carried, if any.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("HTTP status %d %s", e.Code, http.StatusText(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
