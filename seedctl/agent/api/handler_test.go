package api_test

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/agent"
	"github.com/webswarm/webswarm/seedctl/agent/api"
	"github.com/webswarm/webswarm/seedctl/agent/api/apitest"
)

const (
	ihA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	ihB = "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ihC = "cccccccccccccccccccccccccccccccccccccccc"
)

func newFake() *apitest.Fake {
	return apitest.NewFake(
		agent.Status{Version: "test", Dir: "/srv/www", StateDir: "/var/lib/seedctl", ListenPort: 6881, Started: time.Unix(1700000000, 0).UTC()},
		agent.TorrentInfo{InfoHash: ihA, Name: "alpha.iso", Size: 1 << 30, State: agent.Seeding, Peers: 3, UploadRate: 5 << 20, Uploaded: 3 << 30, Ratio: 3, Seeders: 1, Leechers: 2},
		agent.TorrentInfo{InfoHash: ihB, Name: "beta.iso", Size: 1 << 20, State: agent.Error, Error: "payload missing", Seeders: -1, Leechers: -1},
	)
}

// call sends one request to h and returns the status and decoded body.
func call(t *testing.T, h http.Handler, method, target, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

func TestHandlerRoutes(t *testing.T) {
	f := newFake()
	h := api.NewHandler(f, nil)

	code, hdr, b := call(t, h, "GET", "/v1/status", "")
	var st agent.Status
	if code != 200 || json.Unmarshal(b, &st) != nil || st.Torrents != 2 || st.ByState[agent.Seeding] != 1 || st.Version != "test" {
		t.Fatalf("status: %d %s", code, b)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	code, _, b = call(t, h, "GET", "/v1/torrents", "")
	var l []map[string]any
	if code != 200 || json.Unmarshal(b, &l) != nil || len(l) != 2 {
		t.Fatalf("list: %d %s", code, b)
	}
	if l[0]["info_hash"] != ihA || l[0]["name"] != "alpha.iso" || l[0]["state"] != "seeding" || l[1]["state"] != "error" || l[1]["error"] != "payload missing" {
		t.Errorf("list: %s", b)
	}

	code, _, b = call(t, h, "GET", "/v1/torrents/"+strings.ToUpper(ihA), "")
	if code != 200 || !strings.Contains(string(b), `"name":"alpha.iso"`) {
		t.Errorf("get (upper-case hash): %d %s", code, b)
	}

	code, _, b = call(t, h, "POST", "/v1/torrents/"+ihA+"/pause", "")
	if code != 200 || !strings.Contains(string(b), `"state":"paused"`) {
		t.Errorf("pause: %d %s", code, b)
	}
	code, _, b = call(t, h, "POST", "/v1/torrents/"+ihA+"/resume", "")
	if code != 200 || !strings.Contains(string(b), `"state":"seeding"`) {
		t.Errorf("resume: %d %s", code, b)
	}
	code, _, b = call(t, h, "POST", "/v1/torrents/"+ihA+"/verify", "")
	if code != http.StatusAccepted || !strings.Contains(string(b), `"state":"checking"`) {
		t.Errorf("verify: %d %s", code, b)
	}
	code, _, _ = call(t, h, "POST", "/v1/rescan", "")
	if code != http.StatusAccepted {
		t.Errorf("rescan: %d", code)
	}

	code, hdr, b = call(t, h, "POST", "/v1/torrents", `{"torrent":"/srv/www/new.iso.torrent","data":"/srv/data/"}`)
	var added agent.TorrentInfo
	if code != http.StatusCreated || json.Unmarshal(b, &added) != nil || added.Name != "new.iso" || added.Data != "/srv/data" {
		t.Fatalf("add: %d %s", code, b)
	}
	if loc := hdr.Get("Location"); loc != "/v1/torrents/"+added.InfoHash {
		t.Errorf("add: Location %q", loc)
	}
	code, _, _ = call(t, h, "DELETE", "/v1/torrents/"+added.InfoHash, "")
	if code != http.StatusNoContent {
		t.Errorf("remove: %d", code)
	}
	if code, _, _ = call(t, h, "GET", "/v1/torrents/"+added.InfoHash, ""); code != 404 {
		t.Errorf("get after remove: %d", code)
	}

	want := []string{"status", "list", "get " + ihA, "pause " + ihA, "get " + ihA, "resume " + ihA, "get " + ihA,
		"verify " + ihA, "get " + ihA, "rescan", "add /srv/www/new.iso.torrent /srv/data", "remove " + added.InfoHash, "get " + added.InfoHash}
	if got := f.Calls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHandlerEmptyListIsArray(t *testing.T) {
	h := api.NewHandler(apitest.NewFake(agent.Status{}), nil)
	code, _, b := call(t, h, "GET", "/v1/torrents", "")
	if code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("empty list: %d %q", code, b)
	}
}

func TestHandlerNonFiniteFigures(t *testing.T) {
	f := apitest.NewFake(agent.Status{}, agent.TorrentInfo{InfoHash: ihC, Name: "empty", Ratio: math.NaN(), Progress: math.Inf(1)})
	h := api.NewHandler(f, nil)
	for _, target := range []string{"/v1/torrents", "/v1/torrents/" + ihC} {
		code, _, b := call(t, h, "GET", target, "")
		if code != 200 || !strings.Contains(string(b), `"ratio":0`) || !strings.Contains(string(b), `"progress":0`) {
			t.Errorf("%s: %d %s", target, code, b)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	internal := errors.New("disk on fire")
	for _, tc := range []struct {
		name, method, target, body string
		fail                       error // forced on the fake
		code                       int
		msg                        string // in the JSON error
		allow                      string
	}{
		{"unknown torrent", "GET", "/v1/torrents/" + ihC, "", nil, 404, "no such torrent", ""},
		{"unknown torrent pause", "POST", "/v1/torrents/" + ihC + "/pause", "", nil, 404, "no such torrent", ""},
		{"unknown torrent remove", "DELETE", "/v1/torrents/" + ihC, "", nil, 404, "no such torrent", ""},
		{"short hash", "GET", "/v1/torrents/abc", "", nil, 400, "want 40 hex digits", ""},
		{"non-hex hash", "GET", "/v1/torrents/" + strings.Repeat("z", 40), "", nil, 400, "invalid", ""},
		{"NUL in hash", "GET", "/v1/torrents/" + strings.Repeat("a", 39) + "%00", "", nil, 400, "invalid", ""},
		{"encoded traversal", "GET", "/v1/torrents/..%2F..%2Fetc%2Fpasswd", "", nil, 400, "not clean", ""},
		{"traversal", "GET", "/v1/torrents/../../etc/passwd", "", nil, 400, "not clean", ""},
		{"dot segment", "GET", "/v1/./status", "", nil, 400, "not clean", ""},
		{"double slash", "GET", "//v1/status", "", nil, 400, "not clean", ""},
		{"unknown route", "GET", "/v2/status", "", nil, 404, "no such endpoint", ""},
		{"root", "GET", "/", "", nil, 404, "no such endpoint", ""},
		{"trailing slash", "GET", "/v1/torrents/", "", nil, 404, "no such endpoint", ""},
		{"unknown action", "POST", "/v1/torrents/" + ihA + "/delete", "", nil, 404, "no such endpoint", ""},
		{"too deep", "POST", "/v1/torrents/" + ihA + "/pause/now", "", nil, 404, "no such endpoint", ""},
		{"wrong method status", "POST", "/v1/status", "", nil, 405, "not allowed", "GET"},
		{"wrong method list", "PUT", "/v1/torrents", "", nil, 405, "not allowed", "GET, POST"},
		{"wrong method torrent", "PATCH", "/v1/torrents/" + ihA, "", nil, 405, "not allowed", "DELETE, GET"},
		{"GET action", "GET", "/v1/torrents/" + ihA + "/pause", "", nil, 405, "not allowed", "POST"},
		{"GET rescan", "GET", "/v1/rescan", "", nil, 405, "not allowed", "POST"},
		{"bad JSON", "POST", "/v1/torrents", `{"torrent":`, nil, 400, "request body", ""},
		{"not an object", "POST", "/v1/torrents", `["/a.torrent"]`, nil, 400, "request body", ""},
		{"empty body", "POST", "/v1/torrents", "", nil, 400, "request body", ""},
		{"unknown field", "POST", "/v1/torrents", `{"torrent":"/a.torrent","delete":true}`, nil, 400, "unknown field", ""},
		{"two objects", "POST", "/v1/torrents", `{"torrent":"/a.torrent"}{"torrent":"/b.torrent"}`, nil, 400, "after the JSON object", ""},
		{"no torrent", "POST", "/v1/torrents", `{"data":"/srv"}`, nil, 400, "required", ""},
		{"relative torrent", "POST", "/v1/torrents", `{"torrent":"a.torrent"}`, nil, 400, "absolute", ""},
		{"relative data", "POST", "/v1/torrents", `{"torrent":"/a.torrent","data":"../x"}`, nil, 400, "absolute", ""},
		{"NUL in path", "POST", "/v1/torrents", `{"torrent":"/a\u0000.torrent"}`, nil, 400, "absolute", ""},
		{"huge body", "POST", "/v1/torrents", `{"torrent":"/` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, nil, 413, "too large", ""},
		{"huge whitespace", "POST", "/v1/torrents", `{"torrent":"/a.torrent"}` + strings.Repeat(" ", api.MaxBodyBytes), nil, 413, "too large", ""},
		{"conflict", "POST", "/v1/torrents", `{"torrent":"/a.torrent"}`, agent.ErrConflict, 409, "conflict", ""},
		{"invalid from the agent", "POST", "/v1/torrents/" + ihA + "/resume", "", agent.ErrInvalid, 400, "invalid request", ""},
		{"internal", "POST", "/v1/torrents/" + ihA + "/pause", "", internal, 500, "disk on fire", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.FailWith(tc.fail)
			code, hdr, b := call(t, api.NewHandler(f, nil), tc.method, tc.target, tc.body)
			var e struct{ Error string }
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("%d, body not JSON: %q", code, b)
			}
			if code != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("%d %q, want %d with %q", code, e.Error, tc.code, tc.msg)
			}
			if hdr.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", hdr.Get("Allow"), tc.allow)
			}
			for _, c := range f.Calls() {
				if tc.code == 400 && !strings.HasPrefix(c, "status") && tc.fail == nil {
					t.Errorf("a rejected request reached the agent: %s", c)
				}
			}
		})
	}
}

// serve runs one prepared request through h.
func serve(h http.Handler, req *http.Request) (int, http.Header, []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.Bytes()
}
