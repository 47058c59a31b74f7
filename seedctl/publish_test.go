package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
