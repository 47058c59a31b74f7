package main

import (
	"io"
	"strings"
	"testing"
)

// TestFrontDoorFlags: the FastCGI and HTTP connection limits have sane defaults, and bad
// values stop start-up with an error naming the flag.
func TestFrontDoorFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.sockMode != 0o660 || o.fcgiMaxParams != 64<<10 || o.fcgiMaxConns != 512 {
		t.Errorf("defaults: socket mode %o, --fcgi_max_params %d, --fcgi_max_connections %d", o.sockMode, o.fcgiMaxParams, o.fcgiMaxConns)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--fcgi_max_params", "100"}},
		{[]string{"--fcgi_max_params", "999999999"}},
		{[]string{"--fcgi_max_connections", "-1"}},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.args[0]) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.args[0])
		}
	}
}

// TestHTTPConnCap: the default cap stays under the fd limit with headroom and FastCGI's
// share; a cap the limit cannot hold is refused naming --max_connections.
func TestHTTPConnCap(t *testing.T) {
	for _, tc := range []struct {
		v      int
		nofile uint64
		fcgi   int
		want   int
		err    bool
	}{
		{-1, 2048, 0, 1792, false},
		{-1, 2048, 512, 1280, false},
		{-1, 256, 0, 192, false},
		{-1, 1 << 20, 512, 1<<20 - 1<<17 - 512, false},
		{-1, 64, 0, 0, true},
		{-1, 256, 512, 0, true},
		{0, 64, 0, 0, false},
		{1000, 2048, 0, 1000, false},
		{2000, 2048, 0, 0, true},
	} {
		got, err := httpConnCap(tc.v, tc.nofile, tc.fcgi)
		if got != tc.want || (err != nil) != tc.err || (err != nil && !strings.Contains(err.Error(), "--max_connections")) {
			t.Errorf("httpConnCap(%d, %d, %d) = %d, %v; want %d (error %v)", tc.v, tc.nofile, tc.fcgi, got, err, tc.want, tc.err)
		}
	}
	if _, err := parseFlags([]string{"--max_connections", "-2"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--max_connections") {
		t.Errorf("--max_connections -2: %v", err)
	}
}
