package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"testing"

	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/tracker/announce"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// refused is a real "connection refused" from a loopback port nobody listens on.
func refused(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Skip("something answered on a port just closed")
	}
	return err
}

func TestClassifyAnnounce(t *testing.T) {
	fail := func(reason string) error { return fmt.Errorf("announce: %w", &announcer.FailureError{Reason: reason}) }
	tests := []struct {
		name           string
		err            error
		outcome, class string
	}{
		{"ok", nil, OutcomeOK, ClassNone},
		{"our tracker's unknown torrent", fail(announce.NotAuthorized), OutcomeFailure, ClassUnregistered},
		{"bttrack wording, other case", fail("REQUESTED DOWNLOAD IS NOT AUTHORIZED FOR USE WITH THIS TRACKER."), OutcomeFailure, ClassUnregistered},
		{"unregistered torrent", fail("Unregistered torrent"), OutcomeFailure, ClassUnregistered},
		{"torrent not found", fail("torrent not found"), OutcomeFailure, ClassUnregistered},
		{"passkey", fail("Invalid passkey"), OutcomeFailure, ClassNotAuthorized},
		{"plain not authorized", fail("not authorized"), OutcomeFailure, ClassNotAuthorized},
		{"banned client", fail("Your client is banned"), OutcomeFailure, ClassNotAuthorized},
		{"rate limited", fail("You are announcing too often, slow down"), OutcomeFailure, ClassRateLimited},
		{"other reason", fail("tracker is on holiday"), OutcomeFailure, ClassRefused},
		{"empty reason", fail(""), OutcomeFailure, ClassRefused},
		{"http status", fmt.Errorf("announce: %w", &announcer.StatusError{Code: 502}), OutcomeError, ClassHTTPStatus},
		{"bad reply", fmt.Errorf("announce: %w: not a dict", announcer.ErrBadReply), OutcomeError, ClassBadReply},
		{"reply too large", announcer.ErrReplyTooLarge, OutcomeError, ClassBadReply},
		{"udp silence", fmt.Errorf("udp: %w", announcer.ErrNoReply), OutcomeError, ClassUnreachable},
		{"dns", &url.Error{Op: "Get", URL: "http://x.invalid/announce", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, OutcomeError, ClassUnreachable},
		{"deadline", fmt.Errorf("announce: %w", context.DeadlineExceeded), OutcomeError, ClassTimeout},
		{"net timeout", &url.Error{Op: "Get", URL: "http://127.0.0.1:1/announce", Err: timeoutErr{}}, OutcomeError, ClassTimeout},
		{"connection refused", refused(t), OutcomeError, ClassUnreachable},
		{"refused through url.Error", &url.Error{Op: "Get", URL: "http://127.0.0.1:1/announce", Err: refused(t)}, OutcomeError, ClassUnreachable},
		{"anything else", errors.New("something odd"), OutcomeError, ClassOther},
		{"canceled", context.Canceled, OutcomeError, ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := announcer.Status{Err: tt.err}
			var fe *announcer.FailureError
			if errors.As(tt.err, &fe) {
				st.Failure = fe.Reason
			}
			outcome, class := ClassifyAnnounce(st)
			if outcome != tt.outcome || class != tt.class {
				t.Errorf("ClassifyAnnounce(%v) = %s/%s, want %s/%s", tt.err, outcome, class, tt.outcome, tt.class)
			}
			if !slices.Contains(announceClasses[outcome], class) {
				t.Errorf("%s/%s is not a pre-declared label pair: its series would appear from nowhere", outcome, class)
			}
		})
	}
}
