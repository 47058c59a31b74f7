package announcer

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/benc"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/udpapi"
)

func TestScrapeURL(t *testing.T) {
	// BEP 48's examples, and hosts or queries that merely contain "announce".
	for _, tc := range []struct{ in, want string }{
		{"http://example.com/announce", "http://example.com/scrape"},
		{"http://example.com/x/announce", "http://example.com/x/scrape"},
		{"http://example.com/announce.php", "http://example.com/scrape.php"},
		{"http://example.com/announce?x2%0644", "http://example.com/scrape?x2%0644"},
		{"http://example.com/announce?link=/announce", "http://example.com/scrape?link=/announce"},
		{"https://example.com:8443/t/announce/", ""},
		{"http://example.com/a", ""},
		{"http://example.com/x%064announce", ""},
		{"http://announce.example.com", ""},
		{"http://announce.example.com/", ""},
		{"http://example.com/?announce", ""},
		{"announce", ""},
	} {
		got, err := ScrapeURL(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrNoScrape) {
				t.Errorf("ScrapeURL(%q) = %q, %v; want ErrNoScrape", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ScrapeURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Scrape over HTTP and UDP against the real tracker sees the announcers' counts.
func TestScrapeRealTracker(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{Interval: time.Hour})
	ih := hash("scrape")
	for i, left := range []int64{0, 5, 5} {
		cfg := testConfig([][]string{{rt.HTTP}}, ih, i+1)
		cfg.Progress = func() Progress { return Progress{Left: left} }
		a := mustNew(t, cfg)
		runAnnouncer(t, a)
	}
	for _, u := range []string{rt.HTTP, rt.UDP} {
		testenv.WaitFor(t, 10*time.Second, "counts via "+u, func() error {
			st, err := Scrape(t.Context(), nil, u, ih)
			if err != nil {
				return err
			}
			if st.Seeders != 1 || st.Leechers != 2 || st.URL != u {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
	}
}

func TestScrapeErrors(t *testing.T) {
	rt := startTracker(t, "127.0.0.1", announce.Config{})
	off := "udp://" + serveUDP(t, "127.0.0.1", rt.core, udpapi.Config{DisableScrape: true}).String()
	f := startFake(t, func(i int, q url.Values) (int, string) {
		switch q.Get("case") {
		case "empty":
			return 200, "d5:filesdee"
		case "failure":
			return 200, string(benc.Failure(nil, "no scrapes"))
		case "garbage":
			return 200, "d5:filesi1ee"
		}
		return 404, ""
	})
	ih := hash("scrape errors")
	for _, tc := range []struct {
		url string
		err error
	}{
		{off, ErrFailure},
		{f.URL() + "?case=empty", ErrNotInScrape},
		{f.URL() + "?case=failure", ErrFailure},
		{f.URL() + "?case=garbage", ErrBadReply},
		{f.srv.URL + "/tracker", ErrNoScrape},
		{"wss://tracker.example/announce", ErrBadURL},
	} {
		_, err := Scrape(t.Context(), nil, tc.url, ih)
		if !errors.Is(err, tc.err) {
			t.Errorf("Scrape(%s): %v, want %v", tc.url, err, tc.err)
		}
	}
	_, err := Scrape(t.Context(), nil, f.URL(), ih)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("Scrape of a 404: %v", err)
	}
	if got := f.requests(); len(got) == 0 || got[0].path != "/scrape" || got[0].q.Get("info_hash") != string(ih[:]) {
		t.Errorf("scrape requests %+v", got)
	}
}
