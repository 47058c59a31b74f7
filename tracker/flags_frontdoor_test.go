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
