package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	for _, spelling := range []string{"--version", "-version"} {
		if _, err := parseFlags([]string{"--port", "7000", spelling}, io.Discard); !errors.Is(err, errVersion) {
			t.Errorf("%s: %v, want errVersion", spelling, err)
		}
	}
}

func TestHelpSpellsFlagsWithTwoDashes(t *testing.T) {
	var b bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &b); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	out := b.String()
	for _, want := range []string{
		"\n  --port int\n    \tport to listen on for HTTP (and UDP, see --udp_port) (default 6969)\n",
		"\n  --bind string\n    \taddress to bind to (default: all addresses)\n",
		"\n  --version\n    \tprint the version and exit\n",
		`(default "tracker-state.bencode")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if strings.Contains(out, "\n  -port") {
		t.Error("help spells a flag -name")
	}
}

func TestInUseNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = net.Listen("tcp", l.Addr().String())
	if err == nil {
		t.Fatal("second listen on one address succeeded")
	}
	got := inUse(err, "--port")
	if !errors.Is(got, syscall.EADDRINUSE) || !strings.Contains(got.Error(), "choose another address with --port") {
		t.Errorf("inUse: %v", got)
	}
	other := fmt.Errorf("listen: %w", syscall.EACCES)
	if inUse(other, "--port") != other {
		t.Error("inUse changed an error that is not EADDRINUSE")
	}
}
