package main

import (
	"testing"
	"time"
)

func TestSaveLocation(t *testing.T) {
	src := &torrentSource{dir: "/srv/torrents"}
	for _, tc := range []struct {
		name              string
		saveAs, dir       string
		download          bool
		wantDir, wantName string
	}{
		{"seed defaults to the .torrent's directory", "", "", false, "/srv/torrents", ""},
		{"get defaults to the working directory", "", "", true, ".", ""},
		{"--data or --out wins", "", "/data", false, "/data", ""},
		{"--saveas names the payload", "/www/iso/big.iso", "/data", true, "/www/iso", "big.iso"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := saveLocation(&peerFlags{saveAs: tc.saveAs}, src, tc.dir, tc.download)
			if dir != tc.wantDir || name != tc.wantName {
				t.Errorf("saveLocation = %q, %q; want %q, %q", dir, name, tc.wantDir, tc.wantName)
			}
		})
	}
}

func TestSeededEnough(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name        string
		g           getOptions
		completedAt time.Time
		uploaded    int64
		want        bool
	}{
		{"neither asked: seed until interrupted", getOptions{}, now.Add(-time.Hour), 1 << 30, false},
		{"seed time not reached", getOptions{seedTime: time.Hour}, now, 0, false},
		{"seed time reached", getOptions{seedTime: time.Minute}, now.Add(-2 * time.Minute), 0, true},
		{"ratio not reached", getOptions{seedRatio: 2}, now, 1500, false},
		{"ratio reached", getOptions{seedRatio: 1.5}, now, 1500, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.seededEnough(tc.completedAt, tc.uploaded, 1000); got != tc.want {
				t.Errorf("seededEnough = %v, want %v", got, tc.want)
			}
		})
	}
	if (getOptions{seedRatio: 1}).seededEnough(now, 10, 0) {
		t.Error("an empty torrent reached a ratio")
	}
}
