package main

import (
	"slices"
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
