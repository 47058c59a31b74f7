package announcer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/benc"
	"github.com/webswarm/webswarm/internal/testenv"
)

// okReply is a minimal successful announce reply.
func okReply(interval, minInterval int, extra string) string {
	return fmt.Sprintf("d8:intervali%de12:min intervali%de%s5:peers0:e", interval, minInterval, extra)
}

// The announce query carries binary IDs escaped byte for byte, the key as 8 hex digits
// (the same every time), and echoes the tracker id.
func TestHTTPQuery(t *testing.T) {
	f := startFake(t, func(i int, _ url.Values) (int, string) {
		return 200, "d8:intervali1e12:min intervali1e5:peers0:10:tracker id6:tid &1e"
	})
	cfg := testConfig([][]string{{f.URL() + "?passkey=a%20b"}}, hash("\x00 +%&=~\xffa"), 1)
	copy(cfg.PeerID[:], "-WS0001-\x01/?#[]@!$'")
	cfg.IP = "192.0.2.1"
	a := mustNew(t, cfg)
	runAnnouncer(t, a)
	waitRequests(t, "two announces", 2, func() int { return len(f.requests()) }, a)
	reqs := f.requests()
	first, second := reqs[0], reqs[1]
	if !strings.HasPrefix(first.query, "passkey=a%20b&info_hash=") {
		t.Errorf("query %q: the URL's own query must come first, then info_hash", first.query)
	}
	wantIH := "info_hash=%00%20%2B%25%26%3D~%FFa" + strings.Repeat("%00", 11) + "&"
	if !strings.Contains(first.query, wantIH) {
		t.Errorf("query %q lacks %q", first.query, wantIH)
	}
	if !strings.Contains(first.query, "peer_id=-WS0001-%01%2F%3F%23%5B%5D%40%21%24%2701&") {
		t.Errorf("query %q: peer_id not escaped byte for byte", first.query)
	}
	for _, r := range reqs[:2] {
		if got := r.q.Get("info_hash"); got != string(cfg.InfoHash[:]) {
			t.Errorf("tracker decoded info_hash %q", got)
		}
		if got := r.q.Get("peer_id"); got != string(cfg.PeerID[:]) {
			t.Errorf("tracker decoded peer_id %q", got)
		}
		for k, want := range map[string]string{"port": "40001", "numwant": "50", "compact": "1",
			"left": "1000", "uploaded": "0", "downloaded": "0", "ip": "192.0.2.1", "passkey": "a b"} {
			if got := r.q.Get(k); got != want {
				t.Errorf("%s=%q, want %q", k, got, want)
			}
		}
	}
	if !regexp.MustCompile(`^[0-9A-F]{8}$`).MatchString(first.q.Get("key")) || first.q.Get("key") != second.q.Get("key") {
		t.Errorf("keys %q, %q: want the same 8 upper-case hex digits", first.q.Get("key"), second.q.Get("key"))
	}
	if first.event() != "started" || second.event() != "" {
		t.Errorf("events %q, %q: want started, then none", first.event(), second.event())
	}
	if first.q.Has("trackerid") || second.q.Get("trackerid") != "tid &1" {
		t.Errorf("trackerid %q then %q: want none, then the echo of \"tid &1\"", first.q.Get("trackerid"), second.q.Get("trackerid"))
	}
}

func TestParseHTTPReply(t *testing.T) {
	var self [20]byte
	copy(self[:], "-WS0001-selfselfself")
	compact := string([]byte{127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80})
	v6 := string(netip.MustParseAddr("2001:db8::1").AsSlice()) + "\x00\x51"
	tests := []struct {
		name      string
		body      string
		want      []string
		interval  time.Duration
		min       time.Duration
		warning   string
		trackerID string
		err       error
		reason    string
	}{
		{name: "compact", body: "d8:completei3e10:incompletei4e8:intervali1800e5:peers12:" + compact + "e",
			want: []string{"127.0.0.1:6881", "10.0.0.2:80"}, interval: 30 * time.Minute},
		{name: "compact with partial record", body: "d5:peers8:" + compact[:8] + "e", want: []string{"127.0.0.1:6881"}},
		{name: "peers6", body: "d5:peers0:6:peers618:" + v6 + "e", want: []string{"[2001:db8::1]:81"}},
		{name: "dict", body: "d5:peersl" +
			"d2:ip9:127.0.0.17:peer id20:-XX0001-aaaaaaaaaaaa4:porti6881ee" +
			"d2:ip11:2001:db8::24:porti6882ee" +
			"d2:ip11:example.org4:porti1ee" + // host names are not resolved
			"d2:ip8:10.0.0.34:porti0ee" + // bad port
			"d2:ip8:10.0.0.44:porti70000ee" + // bad port
			"d2:ip8:10.0.0.54:port2:80e" + // port not an integer
			"d2:ip8:10.0.0.67:peer id20:-WS0001-selfselfself4:porti1ee" + // ourselves
			"i5e" + // not a dictionary
			"ee",
			want: []string{"127.0.0.1:6881", "[2001:db8::2]:6882"}},
		{name: "min interval and warning", body: "d8:intervali60e12:min intervali30e15:warning message4:slow10:tracker id2:T1e",
			interval: time.Minute, min: 30 * time.Second, warning: "slow", trackerID: "T1"},
		{name: "hostile intervals", body: "d8:intervali99999999999999e12:min intervali-5ee", interval: 24 * time.Hour},
		{name: "trailing newline", body: "d8:intervali5ee\n", interval: 5 * time.Second},
		{name: "failure", body: "d14:failure reason9:not here!e", err: ErrFailure, reason: "not here!"},
		{name: "empty failure reason", body: "d14:failure reason0:e", err: ErrFailure, reason: ""},
		{name: "html", body: "<html>captive portal</html>", err: ErrBadReply},
		{name: "list", body: "le", err: ErrBadReply},
		{name: "truncated", body: "d8:intervali5", err: ErrBadReply},
		{name: "peers integer", body: "d5:peersi5ee", err: ErrBadReply},
		{name: "interval string", body: "d8:interval2:60e", err: ErrBadReply},
		{name: "huge string length", body: "d5:peers99999999999:e", err: ErrBadReply},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseHTTPReply([]byte(tc.body), self)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				var fe *FailureError
				if errors.As(err, &fe) && fe.Reason != tc.reason {
					t.Errorf("reason %q, want %q", fe.Reason, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range r.peers {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("peers %v, want %v", got, tc.want)
			}
			if r.interval != tc.interval || r.minInterval != tc.min || r.warning != tc.warning || r.trackerID != tc.trackerID {
				t.Errorf("reply %+v", r)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	big := "d5:peers" + fmt.Sprint(2<<20) + ":" + strings.Repeat("x", 2<<20) + "e"
	f := startFake(t, func(i int, q url.Values) (int, string) {
		switch q.Get("case") {
		case "404":
			return 404, "not found"
		case "400":
			return 400, string(benc.Failure(nil, "bad passkey"))
		case "big":
			return 200, big
		case "garbage":
			return 200, "\x00\x01garbage"
		}
		return 500, ""
	})
	refused := fmt.Sprintf("http://127.0.0.1:%d/announce", testenv.FreePort(t, "127.0.0.1"))
	a := mustNew(t, testConfig([][]string{{f.URL()}}, hash("errors"), 1))
	ctx := t.Context()
	for _, tc := range []struct {
		url   string
		check func(error) bool
	}{
		{f.URL() + "?case=404", func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Code == 404 && !errors.Is(err, ErrFailure)
		}},
		{f.URL() + "?case=400", func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Code == 400 && se.Reason == "bad passkey"
		}},
		{f.URL() + "?case=big", func(err error) bool { return errors.Is(err, ErrReplyTooLarge) && errors.Is(err, ErrBadReply) }},
		{f.URL() + "?case=garbage", func(err error) bool { return errors.Is(err, ErrBadReply) }},
		{refused, func(err error) bool {
			var oe *net.OpError
			return errors.As(err, &oe)
		}},
	} {
		_, err := a.httpAnnounce(ctx, tc.url, &request{numWant: 1})
		if err == nil || !tc.check(err) {
			t.Errorf("%s: error %v not classified as expected", tc.url, err)
		}
	}
}

// A tracker that never answers is given up on after Config.Timeout.
func TestHTTPSlowReply(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, func(int, url.Values) (int, string) {
		<-release
		return 200, okReply(60, 30, "")
	})
	defer close(release)
	cfg := testConfig([][]string{{f.URL()}}, hash("slow"), 1)
	cfg.Timeout = 200 * time.Millisecond
	a := mustNew(t, cfg)
	_, err := a.httpAnnounce(t.Context(), f.URL(), &request{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want a deadline", err)
	}
}

// Run reports warnings and failure reasons in Status, and delivers dictionary peers minus
// our own address and peer ID.
func TestHTTPRunStatus(t *testing.T) {
	failing := make(chan bool, 1)
	failing <- false
	self := netip.MustParseAddrPort("127.0.0.1:40001")
	f := startFake(t, func(i int, _ url.Values) (int, string) {
		if i > 0 {
			return 200, string(benc.Failure(nil, "torrent unregistered"))
		}
		return 200, "d8:intervali1e12:min intervali1e5:peersl" +
			"d2:ip9:127.0.0.14:porti40001ee" + // Config.Self
			"d2:ip9:127.0.0.24:porti7000ee" +
			"d2:ip9:127.0.0.37:peer id20:-WS0001-test000000014:porti7001ee" + // our peer ID
			"e15:warning message11:be careful!e"
	})
	cfg := testConfig([][]string{{f.URL()}}, hash("status"), 1)
	cfg.Self = []netip.AddrPort{self}
	a := mustNew(t, cfg)
	runAnnouncer(t, a)
	select {
	case peers := <-a.Peers():
		if !slices.Equal(peers, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:7000")}) {
			t.Errorf("peers %v, want only 127.0.0.2:7000", peers)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no peers")
	}
	st := a.Status()
	if st.Warning != "be careful!" || st.Err != nil || st.Peers != 1 {
		t.Errorf("status %+v: want the warning, no error, 1 peer", st)
	}
	a.Announce()
	testenv.WaitFor(t, 10*time.Second, "a failure", func() error {
		if a.Status().Failures == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	st = a.Status()
	if st.Failure != "torrent unregistered" || !errors.Is(st.Err, ErrFailure) {
		t.Errorf("status %+v: want the failure reason", st)
	}
}

// The default client of Scrape and the announcer talk to a tracker that redirects.
func TestHTTPRedirect(t *testing.T) {
	f := startFake(t, func(int, url.Values) (int, string) { return 200, okReply(60, 30, "") })
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, f.URL()+"?"+r.URL.RawQuery, http.StatusFound)
	})
	r := startFakeHandler(t, mux)
	a := mustNew(t, testConfig([][]string{{r + "/announce"}}, hash("redirect"), 1))
	if _, err := a.httpAnnounce(t.Context(), r+"/announce", &request{}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests reached the redirect target", n)
	}
}
