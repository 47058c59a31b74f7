package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
	"github.com/webswarm/webswarm/seedctl/agent/api/apitest"
)

// FuzzHandler sends arbitrary methods, paths and bodies: the answer is always a JSON body (or
// none), never a 500 (the fake fails nothing) and never a redirect.
func FuzzHandler(f *testing.F) {
	for _, s := range []struct{ method, path, body string }{
		{"GET", "/v1/torrents", ""},
		{"POST", "/v1/torrents", `{"torrent":"/a.torrent","data":"/d"}`},
		{"POST", "/v1/torrents/" + ihA + "/pause", ""},
		{"DELETE", "/v1/torrents/" + ihB, ""},
		{"GET", "/v1/torrents/%2e%2e/status", ""},
		{"POST", "/v1/torrents", `{"torrent":"/a\u0000"}`},
		{"OPTIONS", "/v1/rescan", "{}"},
	} {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://agent/", strings.NewReader(body))
		if err != nil {
			return // not a method net/http would deliver
		}
		req.URL.Path = path
		rec := httptest.NewRecorder()
		api.NewHandler(newFake(), nil).ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("%s %q %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if b := rec.Body.Bytes(); len(b) > 0 && !json.Valid(b) {
			t.Fatalf("%s %q: body not JSON: %q", method, path, b)
		}
	})
}

// BenchmarkList measures GET /v1/torrents of an agent with 10,000 torrents, the size the
// agent is built for.
func BenchmarkList(b *testing.B) {
	f := apitest.NewFake(agent.Status{})
	for i := range 10000 {
		f.Put(agent.TorrentInfo{InfoHash: fmt.Sprintf("%040x", i), Name: fmt.Sprintf("file-%05d.iso", i), Size: 1 << 30,
			State: agent.Seeding, Peers: 3, UploadRate: 1 << 20, Uploaded: 5 << 30, Ratio: 5, Torrent: "/srv/www/x.torrent", Data: "/srv/www"})
	}
	h := api.NewHandler(f, nil)
	req := httptest.NewRequest("GET", "/v1/torrents", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
}
