package api_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webswarm/webswarm/seedctl/agent/api"
)

const token = "s3cret-token-0123456789abcdef"

func writeToken(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// serveTCP starts the API for a fake on 127.0.0.1 with the token and returns its port.
func serveTCP(t *testing.T) int {
	t.Helper()
	s, err := api.Start(newFake(), api.Config{TCP: "127.0.0.1:0", TokenFile: writeToken(t, token+"\n", 0o600)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	return s.Addr().(*net.TCPAddr).Port
}

func TestGuardOverTCP(t *testing.T) {
	port := serveTCP(t)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		name, host, auth string
		code             int
	}{
		{"good", fmt.Sprintf("127.0.0.1:%d", port), "Bearer " + token, 200},
		{"localhost", fmt.Sprintf("localhost:%d", port), "Bearer " + token, 200},
		{"localhost upper case, scheme lower case", fmt.Sprintf("LOCALHOST:%d", port), "bearer " + token, 200},
		{"no token", fmt.Sprintf("127.0.0.1:%d", port), "", 401},
		{"wrong token", fmt.Sprintf("127.0.0.1:%d", port), "Bearer " + token + "x", 401},
		{"token prefix", fmt.Sprintf("127.0.0.1:%d", port), "Bearer " + token[:10], 401},
		{"empty bearer", fmt.Sprintf("127.0.0.1:%d", port), "Bearer ", 401},
		{"basic auth", fmt.Sprintf("127.0.0.1:%d", port), "Basic " + token, 401},
		{"bare token", fmt.Sprintf("127.0.0.1:%d", port), token, 401},
		{"rebinding host", fmt.Sprintf("evil.example:%d", port), "Bearer " + token, 403},
		{"rebinding host without token", fmt.Sprintf("evil.example:%d", port), "", 403},
		{"host without port", "localhost", "Bearer " + token, 403},
		{"other port", fmt.Sprintf("127.0.0.1:%d", port+1), "Bearer " + token, 403},
		{"other loopback IP", fmt.Sprintf("127.0.0.2:%d", port), "Bearer " + token, 403},
		{"suffix trick", fmt.Sprintf("localhost:%d.evil.example", port), "Bearer " + token, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/v1/status", port), nil)
			req.Host = tc.host
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.code)
			}
			if tc.code != 200 && !strings.HasPrefix(string(b), `{"error":`) {
				t.Errorf("error body not JSON: %s", b)
			}
			if tc.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.code != 200 && strings.Contains(string(b), "test") {
				t.Errorf("a refused request saw the agent's status: %s", b)
			}
		})
	}
}

func TestGuardEmptyTokenLetsNothingThrough(t *testing.T) {
	h := api.Guard(api.NewHandler(newFake(), nil), nil, []string{"example.com"})
	for _, auth := range []string{"", "Bearer ", "Bearer"} {
		req, _ := http.NewRequest("GET", "http://example.com/v1/status", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		code, _, _ := serve(h, req)
		if code != 401 {
			t.Errorf("empty token, Authorization %q: %d", auth, code)
		}
	}
}

func TestClientOverTCP(t *testing.T) {
	port := serveTCP(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c, err := api.NewTCPClient(base, []byte(token), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Status(ctx(t)); err != nil || st.Version != "test" {
		t.Fatalf("status: %+v %v", st, err)
	}
	lc, _ := api.NewTCPClient(fmt.Sprintf("http://localhost:%d/", port), []byte(token), 0)
	if _, err := lc.List(ctx(t)); err != nil {
		t.Errorf("list via localhost: %v", err)
	}
	wrong, _ := api.NewTCPClient(base, []byte("wrong-token-0123456789"), 0)
	if _, err := wrong.Status(ctx(t)); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("wrong token: %v, want ErrUnauthorized", err)
	}
}

func TestNewTCPClientRefuses(t *testing.T) {
	for _, u := range []string{
		"https://127.0.0.1:1", "http://192.0.2.1:80", "http://example.org:80", "http://127.0.0.1",
		"http://127.0.0.1:1/v1", "http://user:pw@127.0.0.1:1", "127.0.0.1:80", "http://127.0.0.1:1?x=1", "%zz",
	} {
		if _, err := api.NewTCPClient(u, []byte(token), 0); err == nil {
			t.Errorf("NewTCPClient(%q) accepted", u)
		}
	}
	if _, err := api.NewTCPClient("http://127.0.0.1:1", nil, 0); err == nil {
		t.Error("NewTCPClient without a token accepted")
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1/"} {
		if _, err := api.NewTCPClient(u, []byte(token), 0); err != nil {
			t.Errorf("NewTCPClient(%q): %v", u, err)
		}
	}
}

func TestReadTokenFile(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string // token, or "" for an error
		msg           string
	}{
		{"newline trimmed", token + "\n", 0o600, token, ""},
		{"group may read", "  " + token + "\r\n", 0o640, token, ""},
		{"world-readable", token, 0o644, "", "readable by everyone"},
		{"short", "short-token\n", 0o600, "", "at least 16"},
		{"empty", "", 0o600, "", "at least 16"},
		{"inner space", "0123456789 abcdefghij", 0o600, "", "printable ASCII"},
		{"control byte", "0123456789\x01abcdefghij", 0o600, "", "printable ASCII"},
		{"non-ASCII", "0123456789abcdefghijü", 0o600, "", "printable ASCII"},
		{"huge", strings.Repeat("a", 1<<20), 0o600, "", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := api.ReadTokenFile(writeToken(t, tc.content, tc.mode))
			if string(got) != tc.want || (tc.want == "") != (err != nil) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("%q, %v; want %q / %q", got, err, tc.want, tc.msg)
			}
		})
	}
	if _, err := api.ReadTokenFile(t.TempDir()); err == nil {
		t.Error("a directory as token file accepted")
	}
	if _, err := api.ReadTokenFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing token file: %v", err)
	}
}
