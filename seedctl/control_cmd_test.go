package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
	"github.com/webswarm/webswarm/seedctl/agent/api/apitest"
)

const (
	ctlIHA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	ctlIHB = "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ctlIHC = "cccccccccccccccccccccccccccccccccccccccc"
)

func ctlFake() *apitest.Fake {
	return apitest.NewFake(
		agent.Status{Version: "v-test", Dir: "/srv/www", StateDir: "/var/lib/seedctl", ListenPort: 6881, Started: time.Now().Add(-90 * time.Minute), Peers: 4, WebRTC: 2, UploadRate: 5 << 20, Uploaded: 3 << 30},
		agent.TorrentInfo{InfoHash: ctlIHA, Name: "alpha.iso", Size: 1 << 30, State: agent.Seeding, Peers: 3, WebRTC: 2, UploadRate: 5 << 20, Uploaded: 3 << 30, Ratio: 3, Seeders: 1, Leechers: 2},
		agent.TorrentInfo{InfoHash: ctlIHB, Name: "beta.iso", Size: 1 << 20, State: agent.Error, Error: "payload missing", Seeders: -1, Leechers: -1, Tracker: "unregistered torrent"},
		agent.TorrentInfo{InfoHash: ctlIHC, Name: "gamma", Size: 10 << 20, State: agent.Checking, Progress: 0.42},
	)
}

// fakeAgent serves f on the control socket of a fresh state directory, as an agent would.
func fakeAgent(t *testing.T, f *apitest.Fake) string {
	t.Helper()
	dir := t.TempDir()
	s, err := api.Start(f, api.Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return dir
}

// runCmds runs seedctl with cmds registered and returns stdout, stderr and the error.
func runCmds(t *testing.T, cmds []*cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "seedctl", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(cmds...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func runCtl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runCmds(t, append(controlCmds(), newVerifyCmd()), args...)
}

func TestCtlListTable(t *testing.T) {
	dir := fakeAgent(t, ctlFake())
	out, _, err := runCtl(t, "list", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("table:\n%s", out)
	}
	header := regexp.MustCompile(`^NAME +SIZE +STATE +PEERS +UP RATE +UPLOADED +RATIO$`)
	if !header.MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	for i, want := range []string{
		`^alpha\.iso +1 GiB +seeding +3 \(2 webrtc\) +5 MiB/s +3 GiB +3\.00$`,
		`^beta\.iso +1 MiB +error +0 +0 B/s +0 B +0\.00$`,
		`^gamma +10 MiB +checking 42% +0 +0 B/s +0 B +0\.00$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("row %d %q, want %s", i+1, lines[i+1], want)
		}
	}
	// Columns line up: SIZE starts at the same column in every row.
	col := strings.Index(lines[0], "SIZE")
	for _, l := range lines[1:4] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("SIZE column misaligned in %q", l)
		}
	}
	if !strings.Contains(out, "\nbeta.iso (abbbbbbb): payload missing\n") || !strings.Contains(out, "beta.iso (abbbbbbb): tracker: unregistered torrent") {
		t.Errorf("no notes for the torrent in error:\n%s", out)
	}
}

func TestCtlListJSON(t *testing.T) {
	dir := fakeAgent(t, ctlFake())
	out, _, err := runCtl(t, "list", "--json", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	var l []map[string]any
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(l) != 3 {
		t.Fatalf("%d objects", len(l))
	}
	a := l[0]
	for k, want := range map[string]any{
		"info_hash": ctlIHA, "name": "alpha.iso", "state": "seeding", "size": float64(1 << 30),
		"peers": float64(3), "upload_rate": float64(5 << 20), "uploaded": float64(3 << 30), "ratio": float64(3),
		"seeders": float64(1), "leechers": float64(2),
	} {
		if a[k] != want {
			t.Errorf("%s = %v, want %v", k, a[k], want)
		}
	}
	if l[1]["state"] != "error" || l[1]["error"] != "payload missing" || l[2]["state"] != "checking" {
		t.Errorf("states: %v", l)
	}
}

func TestCtlListEmpty(t *testing.T) {
	dir := fakeAgent(t, apitest.NewFake(agent.Status{}))
	if out, _, err := runCtl(t, "list", "--state", dir); err != nil || out != "no torrents\n" {
		t.Errorf("empty list: %q %v", out, err)
	}
	if out, _, err := runCtl(t, "list", "--json", "--state", dir); err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("empty list as JSON: %q %v", out, err)
	}
}

func TestCtlListHostileName(t *testing.T) {
	f := apitest.NewFake(agent.Status{},
		agent.TorrentInfo{InfoHash: ctlIHA, Name: "\x1b[31mred\nnext\tline\x07" + strings.Repeat("x", 100), State: agent.Error, Error: "bad\x1b]0;title\x07"})
	dir := fakeAgent(t, f)
	out, _, err := runCtl(t, "list", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b\x07\t") {
		t.Errorf("control characters reached the terminal: %q", out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[1], "?[31mred?next?line?xx") || !strings.Contains(lines[1], "…") || !strings.Contains(lines[1], "error") {
		t.Errorf("row %q", lines[1])
	}
	// JSON carries the name unchanged.
	out, _, _ = runCtl(t, "list", "--json", "--state", dir)
	var l []agent.TorrentInfo
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l) != 1 || l[0].Name != f.List()[0].Name {
		t.Errorf("JSON name: %v %+v", err, l)
	}
}

func TestCtlStatus(t *testing.T) {
	dir := fakeAgent(t, ctlFake())
	out, _, err := runCtl(t, "status", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"agent:      v-test on " + agent.SocketPath(dir) + ", up 1h30m",
		"directory:  /srv/www\n",
		"peer port:  6881\n",
		"torrents:   3 (1 seeding, 1 checking, 1 error)\n",
		"peers:      4 (2 webrtc)\n",
		"upload:     5 MiB/s, 3 GiB uploaded\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCtl(t, "status", "--json", "--state", dir)
	var st agent.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Torrents != 3 || st.ByState[agent.Error] != 1 || st.Version != "v-test" {
		t.Errorf("status --json: %v\n%s", err, out)
	}
}

func TestCtlActions(t *testing.T) {
	f := ctlFake()
	dir := fakeAgent(t, f)
	state := func(ih string) agent.State {
		for _, ti := range f.List() {
			if ti.InfoHash == ih {
				return ti.State
			}
		}
		return "gone"
	}
	for _, tc := range []struct {
		args []string
		out  string
		ih   string
		want agent.State
	}{
		{[]string{"pause", "alpha.iso"}, "paused alpha.iso (" + ctlIHA + ")\n", ctlIHA, agent.Paused},
		{[]string{"resume", "aaaa"}, "resumed alpha.iso (" + ctlIHA + ")\n", ctlIHA, agent.Seeding},
		{[]string{"verify", strings.ToUpper(ctlIHC)}, "queued for a re-check: gamma (" + ctlIHC + ")\n", ctlIHC, agent.Checking},
		{[]string{"pause", "alpha.iso", "cccc"}, "paused alpha.iso (" + ctlIHA + ")\npaused gamma (" + ctlIHC + ")\n", ctlIHC, agent.Paused},
		{[]string{"remove", "beta.iso"}, "removed beta.iso (" + ctlIHB + ")\n", ctlIHB, "gone"},
	} {
		out, errOut, err := runCtl(t, append(tc.args, "--state", dir)...)
		if err != nil || out != tc.out || errOut != "" {
			t.Errorf("%v: %q %q %v, want %q", tc.args, out, errOut, err, tc.out)
		}
		if s := state(tc.ih); s != tc.want {
			t.Errorf("%v: state %s, want %s", tc.args, s, tc.want)
		}
	}
	if out, _, err := runCtl(t, "rescan", "--state", dir); err != nil || out != "rescan requested\n" {
		t.Errorf("rescan: %q %v", out, err)
	}
	if c := f.Calls(); c[len(c)-1] != "rescan" {
		t.Errorf("rescan did not reach the agent: %v", c)
	}
}

func TestCtlActionErrors(t *testing.T) {
	f := ctlFake()
	f.Put(agent.TorrentInfo{InfoHash: "aaaa" + strings.Repeat("1", 36), Name: "other"})
	dir := fakeAgent(t, f)
	_, _, err := runCtl(t, "pause", "nope", "--state", dir)
	if !errors.Is(err, agent.ErrUnknown) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown name: %v", err)
	}
	_, _, err = runCtl(t, "pause", "aaaa", "--state", dir)
	if !errors.Is(err, api.ErrAmbiguous) || !strings.Contains(err.Error(), ctlIHA) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	_, _, err = runCtl(t, "remove", strings.Repeat("d", 40), "--state", dir)
	if !errors.Is(err, agent.ErrUnknown) {
		t.Errorf("unknown hash: %v", err)
	}
	// One bad name among good ones: the others are done, the bad one reported, the command fails.
	out, errOut, err := runCtl(t, "pause", "alpha.iso", "nope", "gamma", "--state", dir)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 failed") || !errors.Is(err, agent.ErrUnknown) {
		t.Errorf("partial failure: %v", err)
	}
	if strings.Count(out, "paused ") != 2 || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("partial failure output: %q %q", out, errOut)
	}
	if _, _, err := runCtl(t, "pause", "--state", dir); err == nil {
		t.Error("pause without a torrent accepted")
	}
	if _, _, err := runCtl(t, "list", "extra", "--state", dir); err == nil {
		t.Error("list with an argument accepted")
	}
	f.FailWith(errors.New("disk on fire"))
	if _, _, err := runCtl(t, "verify", ctlIHA, "--state", dir); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("agent failure: %v", err)
	}
}

func TestCtlAdd(t *testing.T) {
	f := ctlFake()
	dir := fakeAgent(t, f)
	wd, _ := os.Getwd()
	out, _, err := runCtl(t, "add", "new.iso.torrent", "--data", "payload", "--state", dir)
	if err != nil || !regexp.MustCompile(`^added new\.iso \([0-9a-f]{40}\): checking\n$`).MatchString(out) {
		t.Fatalf("add: %q %v", out, err)
	}
	want := "add " + filepath.Join(wd, "new.iso.torrent") + " " + filepath.Join(wd, "payload")
	if c := f.Calls(); c[len(c)-1] != want {
		t.Errorf("the agent got %q, want %q (absolute paths)", c[len(c)-1], want)
	}
	_, _, err = runCtl(t, "add", "new.iso.torrent", "--state", dir)
	if !errors.Is(err, agent.ErrConflict) || !strings.Contains(err.Error(), "add new.iso.torrent") {
		t.Errorf("second add: %v", err)
	}
}

func TestCtlNoAgent(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"status"}, {"list"}, {"pause", "x", "y"}, {"add", "a.torrent"}, {"rescan"}} {
		_, _, err := runCtl(t, append(args, "--state", dir)...)
		want := "no agent running on " + agent.SocketPath(dir) + " (start one with seedctl agent --dir DIR --state " + dir
		if !errors.Is(err, api.ErrNoAgent) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v\nwant %q", args, err, want)
		}
	}
}

func TestCtlOverTCP(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := api.Start(ctlFake(), api.Config{TCP: "127.0.0.1:0", TokenFile: tokFile})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	url := fmt.Sprintf("http://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	out, _, err := runCtl(t, "list", "--json", "--agent", url, "--token-file", tokFile)
	if err != nil || !strings.Contains(out, `"name": "alpha.iso"`) {
		t.Errorf("list over TCP: %v\n%s", err, out)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("wrong-token-0123456789"), 0o600)
	if _, _, err := runCtl(t, "status", "--agent", url, "--token-file", wrong); !errors.Is(err, api.ErrUnauthorized) || !strings.Contains(err.Error(), "refused the token in "+wrong) {
		t.Errorf("wrong token: %v", err)
	}
	if _, _, err := runCtl(t, "status", "--agent", url); err == nil || !strings.Contains(err.Error(), "needs --token-file") {
		t.Errorf("no token file: %v", err)
	}
	if _, _, err := runCtl(t, "status", "--token-file", tokFile, "--state", t.TempDir()); err == nil || !strings.Contains(err.Error(), "--token-file is for --agent") {
		t.Errorf("token file without --agent: %v", err)
	}
	if _, _, err := runCtl(t, "status", "--agent", "http://192.0.2.1:80", "--token-file", tokFile); !errors.Is(err, agent.ErrInvalid) {
		t.Errorf("non-loopback agent: %v", err)
	}
	s.Shutdown(context.Background())
	if _, _, err := runCtl(t, "status", "--agent", url, "--token-file", tokFile); !errors.Is(err, api.ErrNoAgent) || !strings.Contains(err.Error(), url) {
		t.Errorf("agent gone: %v", err)
	}
}
