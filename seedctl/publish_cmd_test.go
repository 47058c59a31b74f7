package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api/apitest"
)

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"a/b.iso":              "a/b.iso",
		"iso files/x #1.iso":   "iso%20files/x%20%231.iso",
		"100%/ü?.bin":          "100%25/%C3%BC%3F.bin",
		"semi;colon/a+b&c.txt": "semi%3Bcolon/a+b&c.txt",
	} {
		if got := escapePath(in); got != want {
			t.Errorf("escapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathUnder(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "www", "d"), 0o755)
	os.WriteFile(filepath.Join(root, "www", "d", "f"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "outside"), nil, 0o644)
	os.Symlink(filepath.Join(root, "www"), filepath.Join(root, "link"))
	www := filepath.Join(root, "www")
	for _, tc := range []struct {
		p, root, want string
		ok            bool
	}{
		{filepath.Join(www, "d", "f"), www, "d/f", true},
		{filepath.Join(root, "link", "d", "f"), www, "d/f", true}, // links resolved on both sides
		{filepath.Join(www, "d", "f"), filepath.Join(root, "link"), "d/f", true},
		{filepath.Join(www, "d", "new.torrent"), www, "d/new.torrent", true}, // not created yet
		{filepath.Join(root, "outside"), www, "", false},
		{www, www, "", false},
		{filepath.Join(www, "..", "outside"), www, "", false},
	} {
		got, err := pathUnder(tc.p, tc.root)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("pathUnder(%s, %s) = %q, %v", tc.p, tc.root, got, err)
		}
	}
}

func TestCheckRange(t *testing.T) {
	body := strings.Repeat("x", 1000)
	ranged := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", fileTime, strings.NewReader(body))
	}))
	defer ranged.Close()
	whole := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body))
	}))
	defer whole.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		url  string
		size int64
		want string
	}{
		{ranged.URL, 1000, ""},
		{ranged.URL, 999, "serves 1000 bytes"},
		{whole.URL, 1000, "ignores Range"},
		{ranged.URL + "/x\x7f", 1000, "web seed"},
		{"http://127.0.0.1:1/", 1000, "not reachable"},
	} {
		got := checkRange(ctx, tc.url, tc.size)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("checkRange(%s, %d) = %q, want %q", tc.url, tc.size, got, tc.want)
		}
	}
}

var fileTime = time.Unix(1700000000, 0)

// publishFixture writes a small file under a fresh document root.
func publishFixture(t *testing.T) (docroot, file string) {
	t.Helper()
	docroot = t.TempDir()
	file = filepath.Join(docroot, "iso", "big.iso")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, bytes.Repeat([]byte("webswarm"), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	return docroot, file
}

func runPublishCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runCmds(t, []*cobra.Command{newPublishCmd()}, append([]string{"publish", "--site", "http://127.0.0.1:1", "--no-check", "-q"}, args...)...)
}

func TestPublishAddsToAgent(t *testing.T) {
	f := apitest.NewFake(agent.Status{})
	state := fakeAgent(t, f)
	docroot, file := publishFixture(t)
	out, errOut, err := runPublishCmd(t, file, "--docroot", docroot, "--state", state)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "agent:        seeding it (checking, on "+agent.SocketPath(state)+")\n") {
		t.Errorf("publish does not say it was added:\n%s", out)
	}
	calls := f.Calls()
	if want := "add " + file + ".torrent " + filepath.Dir(file); len(calls) != 1 || calls[0] != want {
		t.Errorf("agent calls %v, want [%s]", calls, want)
	}
	if _, err := os.Stat(file + ".torrent"); err != nil {
		t.Error(err)
	}

	// Published again (-f): the agent already has it, which is not a failure.
	out, errOut, err = runPublishCmd(t, file, "--docroot", docroot, "--state", state, "-f")
	if err != nil || !strings.Contains(out, "agent:        already seeding it") || errOut != "" {
		t.Errorf("republish: %v %q\n%s", err, errOut, out)
	}

	// -o elsewhere: the agent is told where the payload is, since it is not beside the .torrent.
	other := filepath.Join(docroot, "torrents", "big.torrent")
	os.MkdirAll(filepath.Dir(other), 0o755)
	if _, errOut, err := runPublishCmd(t, file, "--docroot", docroot, "--state", state, "-o", other); err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	if c := f.Calls(); c[len(c)-1] != "add "+other+" "+filepath.Dir(file) {
		t.Errorf("with -o the agent got %q", c[len(c)-1])
	}
}

func TestPublishWithoutAgent(t *testing.T) {
	docroot, file := publishFixture(t)
	state := t.TempDir()
	out, errOut, err := runPublishCmd(t, file, "--docroot", docroot, "--state", state)
	if err != nil || errOut != "" {
		t.Fatalf("no agent running made publish fail: %v %q", err, errOut)
	}
	if want := "agent:        not added: no agent running on " + agent.SocketPath(state); !strings.Contains(out, want) || strings.Count(out, "agent:") != 1 {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

func TestPublishNoAgentFlag(t *testing.T) {
	f := apitest.NewFake(agent.Status{})
	state := fakeAgent(t, f)
	docroot, file := publishFixture(t)
	out, _, err := runPublishCmd(t, file, "--docroot", docroot, "--state", state, "--no-agent")
	if err != nil || strings.Contains(out, "agent:") {
		t.Errorf("--no-agent: %v\n%s", err, out)
	}
	if c := f.Calls(); len(c) != 0 {
		t.Errorf("--no-agent still called the agent: %v", c)
	}
}

func TestPublishAgentFailureIsAWarning(t *testing.T) {
	f := apitest.NewFake(agent.Status{})
	f.FailWith(fmt.Errorf("payload unreadable: %w", agent.ErrInvalid))
	state := fakeAgent(t, f)
	docroot, file := publishFixture(t)
	out, errOut, err := runPublishCmd(t, file, "--docroot", docroot, "--state", state, "--json")
	if err != nil {
		t.Fatalf("the torrent was written, publish must not fail: %v", err)
	}
	var j madeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, out)
	}
	if len(j.Warnings) != 1 || !strings.Contains(j.Warnings[0], "payload unreadable") || !strings.Contains(j.Warnings[0], agent.SocketPath(state)) {
		t.Errorf("warnings %q", j.Warnings)
	}
	if errOut != "" {
		t.Errorf("--json wrote to stderr: %q", errOut)
	}

	// Success with --json: the summary stays clean JSON, the agent line goes to stderr.
	f.FailWith(nil)
	j = madeJSON{}
	out, errOut, err = runPublishCmd(t, file, "--docroot", docroot, "--state", state, "--json", "-f")
	if err != nil || json.Unmarshal([]byte(out), &j) != nil || len(j.Warnings) != 0 {
		t.Fatalf("%v %q", err, out)
	}
	if !strings.HasPrefix(errOut, "agent: seeding it (checking,") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestPublishURLs(t *testing.T) {
	docroot := t.TempDir()
	for _, d := range []string{"iso/set", "x"} {
		if err := os.MkdirAll(filepath.Join(docroot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(docroot, "iso", "big file.iso"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	site, _ := url.Parse("https://example.org/mirror/")
	for _, tc := range []struct {
		name, file, trackerPath string
		isDir                   bool
		want                    publishURLs
	}{
		{"file, tracker path on the site", "iso/big file.iso", "/announce", false, publishURLs{
			base: "https://example.org/mirror", file: "https://example.org/mirror/iso/big%20file.iso",
			tracker: "https://example.org/announce", webSeed: "https://example.org/mirror/iso/big%20file.iso"}},
		{"directory: the web seed is its parent", "iso/set", "https://tracker.example.net/announce", true, publishURLs{
			base: "https://example.org/mirror", file: "https://example.org/mirror/iso/set",
			tracker: "https://tracker.example.net/announce", webSeed: "https://example.org/mirror/iso/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &publishOptions{file: filepath.Join(docroot, tc.file), docroot: docroot, trackerPath: tc.trackerPath}
			got, err := p.urls(site, tc.isDir)
			if err != nil {
				t.Fatal(err)
			}
			got.site = nil
			if got != tc.want {
				t.Errorf("urls = %+v\nwant   %+v", got, tc.want)
			}
		})
	}
	p := &publishOptions{file: filepath.Join(docroot, "x"), docroot: docroot, trackerPath: "announce"}
	if _, err := p.urls(site, false); err == nil || !strings.Contains(err.Error(), "--tracker-path") {
		t.Errorf("a relative --tracker-path: %v, want an error naming the flag", err)
	}
}
