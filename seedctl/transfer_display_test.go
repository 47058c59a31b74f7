package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestTransferLines(t *testing.T) {
	v := &transferView{Name: "x.iso", Size: 382_600_000, State: "downloading", Percent: 41.25, ETA: 75,
		SaveTo: "/srv/x.iso", DownloadRate: 1234567, UploadRate: 0, Downloaded: 3 << 20, Uploaded: 6 << 20,
		Peers: 4, Seeds: 1}
	lines := transferLines(v)
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
	if got := transferLines(v)[2]; !strings.Contains(got, "Download Succeeded!") {
		t.Errorf("done: %q", got)
	}
	v.Downloaded = 0
	if got := v.shareRating(); got != "oo" {
		t.Errorf("ratio with nothing downloaded = %q", got)
	}
	v.WebRTCPeers = 2
	if got := transferLines(v)[9]; !strings.HasSuffix(got, "4 (1 seeds, 2 webrtc)") {
		t.Errorf("peers with browsers: %q", got)
	}
	if got := transferLine(v); !strings.HasSuffix(got, "peers 4 seeds 1 webrtc 2") {
		t.Errorf("plain line with browsers: %q", got)
	}
	v.Tracker = "failure: unregistered torrent"
	if got := transferLines(v); !strings.Contains(got[len(got)-1], "unregistered torrent") {
		t.Errorf("tracker failure not shown: %q", got)
	}
}

func TestTransferPrinterModes(t *testing.T) {
	v := &transferView{Name: "a", State: "seeding", Percent: 100, Uploaded: 10}
	var b bytes.Buffer
	p := newTransferPrinter(&b, "json")
	if err := p.Print(v); err != nil {
		t.Fatal(err)
	}
	var back transferView
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.State != "seeding" || back.Uploaded != 10 {
		t.Fatalf("json line %q: %v %+v", b.String(), err, back)
	}

	b.Reset()
	p = newTransferPrinter(&b, "tty")
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
	p = newTransferPrinter(&b, "plain")
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
