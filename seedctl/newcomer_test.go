package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestErrorTextKeepsSuggestionsOnTheirOwnLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"unknown command \"mkae\" for \"seedctl\"\n\nDid you mean this?\n\tmake\n", "unknown command \"mkae\" for \"seedctl\"\nDid you mean this?\n\tmake"},
		{"unknown command \"verfy\" for \"seedctl\"\n\nDid you mean this?\n\tverify\n\tseed\n", "unknown command \"verfy\" for \"seedctl\"\nDid you mean this?\n\tverify\n\tseed"},
		{"open x:\n  no such file", "open x: no such file"},
	} {
		if got := errorText(tc.in); got != tc.want {
			t.Errorf("errorText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBoundClientsWithoutBindHaveNoLocalAddr(t *testing.T) {
	d, _ := boundClients("")
	if d.LocalAddr != nil {
		t.Errorf("LocalAddr = %#v, want a nil interface (dial errors would say <nil>)", d.LocalAddr)
	}
	if d, _ := boundClients("127.0.0.1"); d.LocalAddr == nil || d.LocalAddr.String() != "127.0.0.1:0" {
		t.Errorf("--bind 127.0.0.1: LocalAddr %v", d.LocalAddr)
	}
}

func TestRootVersion(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "seedctl (webswarm) ") || strings.Count(got, "\n") != 1 {
		t.Errorf("--version printed %q, want one line", got)
	}
}
