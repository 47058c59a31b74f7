package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestNormalizeDurationArgs(t *testing.T) {
	names := []string{"display-interval", "rerequest-interval", "seed-time"}
	for _, tc := range []struct{ in, want []string }{
		{[]string{"seed", "x.torrent", "--display_interval", "0.5"}, []string{"seed", "x.torrent", "--display_interval", "0.5s"}},
		{[]string{"--rerequest-interval=300"}, []string{"--rerequest-interval=300s"}},
		{[]string{"--rerequest-interval=5m"}, []string{"--rerequest-interval=5m"}},
		{[]string{"--seed-time", "1h"}, []string{"--seed-time", "1h"}},
		// Only the named flags: a number after another flag is left alone.
		{[]string{"--max-uploads", "7", "--seed-time", "10"}, []string{"--max-uploads", "7", "--seed-time", "10s"}},
		// A flag at the end with no value stays as it is (cobra reports it).
		{[]string{"--display-interval"}, []string{"--display-interval"}},
	} {
		got := normalizeDurationArgs(tc.in, names...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("normalizeDurationArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStatusLines(t *testing.T) {
	v := &statusView{Name: "x.iso", Size: 382_600_000, State: "downloading", Percent: 41.25, ETA: 75,
		SaveTo: "/srv/x.iso", DownloadRate: 1234567, UploadRate: 0, Downloaded: 3 << 20, Uploaded: 6 << 20,
		Peers: 4, Seeds: 1}
	lines := statusLines(v)
	want := map[string]string{
		"saving:":         "x.iso (",
		"percent done:":   "41.2",
		"time left:":      "1m15s",
		"download to:":    "/srv/x.iso",
		"download rate:":  "1234.57 kB/s",
		"upload rate:":    "0.00 kB/s",
		"download total:": "3.0 MiB",
		"upload total:":   "6.0 MiB",
		"share rating:":   "2.000",
		"peers:":          "4 (1 seeds)",
	}
	for _, l := range lines {
		label := strings.TrimSpace(l[:15])
		if w, ok := want[label]; ok {
			if !strings.HasPrefix(l[15:], w) {
				t.Errorf("%q: value %q, want prefix %q", label, l[15:], w)
			}
			delete(want, label)
		}
		if !strings.HasSuffix(label, ":") || l[15] == ' ' {
			t.Errorf("label not padded to 15 columns: %q", l)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing lines %v in %q", want, lines)
	}
	v.Percent, v.State = 100, "seeding"
	if got := statusLines(v)[2]; !strings.Contains(got, "Download Succeeded!") {
		t.Errorf("done: %q", got)
	}
	v.Downloaded = 0
	if got := v.shareRating(); got != "oo" {
		t.Errorf("ratio with nothing downloaded = %q", got)
	}
	v.Tracker = "failure: unregistered torrent"
	if got := statusLines(v); !strings.Contains(got[len(got)-1], "unregistered torrent") {
		t.Errorf("tracker failure not shown: %q", got)
	}
}

func TestStatusPrinterModes(t *testing.T) {
	v := &statusView{Name: "a", State: "seeding", Percent: 100, Uploaded: 10}
	var b bytes.Buffer
	p := newStatusPrinter(&b, "json")
	if err := p.Print(v); err != nil {
		t.Fatal(err)
	}
	var back statusView
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.State != "seeding" || back.Uploaded != 10 {
		t.Fatalf("json line %q: %v %+v", b.String(), err, back)
	}

	b.Reset()
	p = newStatusPrinter(&b, "tty")
	_ = p.Print(v)
	first := b.String()
	if strings.Contains(first, "\x1b[") && strings.HasPrefix(first, "\x1b[1") {
		t.Errorf("first draw moves the cursor up: %q", first)
	}
	b.Reset()
	_ = p.Print(v)
	if !strings.HasPrefix(b.String(), "\x1b[10A") {
		t.Errorf("redraw does not go back up 10 lines: %q", b.String()[:min(20, b.Len())])
	}

	b.Reset()
	p = newStatusPrinter(&b, "plain")
	_ = p.Print(v)
	if strings.Count(b.String(), "\n") != 1 || strings.Contains(b.String(), "\x1b") {
		t.Errorf("plain mode: %q", b.String())
	}
}

func TestTrackerProblem(t *testing.T) {
	err := fmt.Errorf("announce started: %w", &url.Error{Op: "Get", URL: "http://t.example:6969/announce?info_hash=%01%02&peer_id=x", Err: errors.New("connection refused")})
	if got := trackerProblem(err); got != "t.example:6969: connection refused" {
		t.Errorf("trackerProblem = %q", got)
	}
	if got := trackerProblem(errors.New("tracker failure: unregistered torrent")); got != "tracker failure: unregistered torrent" {
		t.Errorf("trackerProblem = %q", got)
	}
}
