package api_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
)

func mustIH(t *testing.T, s string) bittorrent.InfoHash {
	t.Helper()
	ih, err := bittorrent.ParseInfoHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return ih
}

func TestClientOverUnixSocket(t *testing.T) {
	f := newFake()
	_, sock := serveUnix(t, f)
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	if c.Target() != sock {
		t.Errorf("Target %q", c.Target())
	}
	l, err := c.List(ctx(t))
	if err != nil || len(l) != 2 || l[0].Name != "alpha.iso" || l[0].UploadRate != 5<<20 || l[1].Error != "payload missing" || l[1].Seeders != -1 {
		t.Fatalf("list: %+v %v", l, err)
	}
	a := mustIH(t, ihA)
	if ti, err := c.Pause(ctx(t), a); err != nil || ti.State != agent.Paused {
		t.Errorf("pause: %+v %v", ti, err)
	}
	if ti, err := c.Resume(ctx(t), a); err != nil || ti.State != agent.Seeding {
		t.Errorf("resume: %+v %v", ti, err)
	}
	if ti, err := c.Verify(ctx(t), a); err != nil || ti.State != agent.Checking {
		t.Errorf("verify: %+v %v", ti, err)
	}
	if err := c.Rescan(ctx(t)); err != nil {
		t.Errorf("rescan: %v", err)
	}

	// A relative path is made absolute against the caller's directory.
	wd, _ := os.Getwd()
	ti, err := c.Add(ctx(t), "x/new.iso.torrent", "")
	if err != nil || ti.Torrent != filepath.Join(wd, "x/new.iso.torrent") || ti.Data != filepath.Join(wd, "x") {
		t.Fatalf("add: %+v %v", ti, err)
	}
	if _, err := c.Add(ctx(t), "x/new.iso.torrent", ""); !errors.Is(err, agent.ErrConflict) {
		t.Errorf("second add: %v, want ErrConflict", err)
	}
	if err := c.Remove(ctx(t), mustIH(t, ti.InfoHash)); err != nil {
		t.Errorf("remove: %v", err)
	}
	_, err = c.Get(ctx(t), mustIH(t, ti.InfoHash))
	var ae *api.Error
	if !errors.Is(err, agent.ErrUnknown) || !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(err.Error(), "no such torrent") {
		t.Errorf("get removed: %v, want a 404 wrapping ErrUnknown", err)
	}
	if err := c.Remove(ctx(t), mustIH(t, ti.InfoHash)); !errors.Is(err, agent.ErrUnknown) {
		t.Errorf("remove twice: %v, want ErrUnknown", err)
	}
}

func TestClientErrorClasses(t *testing.T) {
	f := newFake()
	_, sock := serveUnix(t, f)
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	a := mustIH(t, ihA)
	for _, tc := range []struct {
		fail error
		want []error // wrapped; nil entries mean "none of the sentinels"
		code int
	}{
		{fmt.Errorf("payload gone: %w", agent.ErrInvalid), []error{agent.ErrInvalid}, 400},
		{fmt.Errorf("busy: %w", agent.ErrConflict), []error{agent.ErrConflict}, 409},
		{errors.New("disk on fire"), nil, 500},
	} {
		f.FailWith(tc.fail)
		_, err := c.Pause(ctx(t), a)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != tc.code || ae.Message != tc.fail.Error() {
			t.Errorf("%v: got %v", tc.fail, err)
			continue
		}
		for _, s := range []error{agent.ErrInvalid, agent.ErrUnknown, agent.ErrConflict, api.ErrUnauthorized, api.ErrForbidden} {
			want := false
			for _, w := range tc.want {
				want = want || w == s
			}
			if errors.Is(err, s) != want {
				t.Errorf("%v: errors.Is(%v) = %v", tc.fail, s, !want)
			}
		}
	}
}

func TestClientNoAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	if _, err := c.Status(ctx(t)); !errors.Is(err, api.ErrNoAgent) || !strings.Contains(err.Error(), sock) {
		t.Errorf("no socket: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tc, _ := api.NewTCPClient("http://"+addr, []byte(token), 0)
	if _, err := tc.Status(ctx(t)); !errors.Is(err, api.ErrNoAgent) {
		t.Errorf("nothing on the port: %v", err)
	}
}

func TestClientSocketPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root connects to any socket")
	}
	_, sock := serveUnix(t, newFake())
	if err := os.Chmod(sock, 0o600&^0o200); err != nil {
		t.Fatal(err)
	}
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	if _, err := c.Status(ctx(t)); errors.Is(err, api.ErrNoAgent) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("socket without write permission: %v", err)
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := api.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := api.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), nil)
	defer shutdown(t, s)
	defer close(release)
	c := api.NewUnixClient(sock, 200*time.Millisecond)
	defer c.Close()
	start := time.Now()
	_, err = c.Status(ctx(t))
	if err == nil || errors.Is(err, api.ErrNoAgent) {
		t.Fatalf("hung agent: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout did not bound the request: %v", d)
	}
}

func TestClientNonJSONError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := api.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := api.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case "/v1/torrents":
			w.Write([]byte(`[{"info_hash": 42}]`)) // a 200 that does not decode
		}
	}), nil)
	defer shutdown(t, s)
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	_, err = c.Status(ctx(t))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(err.Error(), "502 Bad Gateway") || strings.Contains(err.Error(), "html") {
		t.Errorf("non-JSON error: %v", err)
	}
	if _, err := c.List(ctx(t)); err == nil || !strings.Contains(err.Error(), "reading the reply") {
		t.Errorf("undecodable reply: %v", err)
	}
}

func TestMatch(t *testing.T) {
	l := []agent.TorrentInfo{
		{InfoHash: "abcd000000000000000000000000000000000001", Name: "alpha.iso"},
		{InfoHash: "abcd000000000000000000000000000000000002", Name: "beta.iso"},
		{InfoHash: "beef000000000000000000000000000000000003", Name: "dup"},
		{InfoHash: "cafe000000000000000000000000000000000004", Name: "dup"},
		{InfoHash: "dead000000000000000000000000000000000005", Name: "abcd"},
		{InfoHash: "f00d000000000000000000000000000000000006", Name: "bee"},
	}
	for _, tc := range []struct {
		ref, want string // want: info-hash, or the error class
		err       error
	}{
		{"alpha.iso", l[0].InfoHash, nil},
		{"beef", l[2].InfoHash, nil},
		{"BEEF", l[2].InfoHash, nil},
		{"abcd0000000000000000000000000000000000", "", api.ErrAmbiguous}, // two hashes and a name
		{"abcd000000000000000000000000000000000002", l[1].InfoHash, nil},
		{"abcd", "", api.ErrAmbiguous}, // a name and two prefixes
		{"dup", "", api.ErrAmbiguous},
		{"bee", l[5].InfoHash, nil}, // three hex digits: a name only, not a prefix of beef
		{"abc", "", agent.ErrUnknown},
		{"alpha", "", agent.ErrUnknown},
		{"", "", agent.ErrUnknown},
		{"0000", "", agent.ErrUnknown},                                      // prefixes only, not substrings
		{"abcd0000000000000000000000000000000000012", "", agent.ErrUnknown}, // 41 digits
	} {
		got, err := api.Match(l, tc.ref)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Match(%q) = %s, %v; want %v", tc.ref, got.InfoHash, err, tc.err)
			}
			continue
		}
		if err != nil || got.InfoHash != tc.want {
			t.Errorf("Match(%q) = %s, %v; want %s", tc.ref, got.InfoHash, err, tc.want)
		}
	}
	_, err := api.Match(l, "dup")
	if !strings.Contains(err.Error(), l[2].InfoHash) || !strings.Contains(err.Error(), l[3].InfoHash) {
		t.Errorf("ambiguity does not list the candidates: %v", err)
	}
}

func TestClientFind(t *testing.T) {
	f := newFake()
	_, sock := serveUnix(t, f)
	c := api.NewUnixClient(sock, 0)
	defer c.Close()
	before := len(f.Calls())
	if ti, err := c.Find(ctx(t), ihA); err != nil || ti.Name != "alpha.iso" {
		t.Fatalf("find by hash: %+v %v", ti, err)
	}
	if calls := f.Calls()[before:]; len(calls) != 1 || calls[0] != "get "+ihA {
		t.Errorf("a full hash should cost one get, made %v", calls)
	}
	if ti, err := c.Find(ctx(t), "beta.iso"); err != nil || ti.InfoHash != ihB {
		t.Errorf("find by name: %+v %v", ti, err)
	}
	if _, err := c.Find(ctx(t), "a"); !errors.Is(err, agent.ErrUnknown) {
		t.Errorf("find by one digit: %v", err)
	}
	if _, err := c.Find(ctx(t), ihC); !errors.Is(err, agent.ErrUnknown) {
		t.Errorf("find unknown hash: %v", err)
	}
}
