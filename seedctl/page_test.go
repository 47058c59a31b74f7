package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// hostileName is a file name a web admin may well publish (someone else chose it): every
// character HTML and JavaScript give a meaning.
const hostileName = `a<script>alert(1)</script> "quote" 'apos' & </section><img src=x onerror=alert(2)>.iso`

func TestPageEscapesTheName(t *testing.T) {
	made := &metafile.Made{Name: hostileName, TotalLength: 32 << 20, InfoHash: [20]byte{0xab, 0xcd}}
	info, err := newPageInfo(made, "http://example.org/pub/a%3Cscript%3E.iso.torrent", "http://example.org/pub/a%3Cscript%3E.iso", DefaultBundleURL, nil, DefaultPageMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"page", "box"} {
		doc, err := info.render(what)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"<script>alert", "<img", "</section><", `"quote"`, "'apos'", " & "} {
			if strings.Contains(doc, bad) {
				t.Errorf("%s: the name's %q is not escaped", what, bad)
			}
		}
		if !strings.Contains(doc, "a&lt;script&gt;alert(1)&lt;/script&gt; &#34;quote&#34; &#39;apos&#39; &amp; &lt;/section&gt;&lt;img") {
			t.Errorf("%s: the escaped name is missing:\n%s", what, doc)
		}
		// One <section>, one <script> of ours: nothing the name brought in.
		if n := strings.Count(doc, "<script"); n != 1 {
			t.Errorf("%s: %d <script> elements, want 1", what, n)
		}
		if n := strings.Count(doc, "</section>"); n != 1 {
			t.Errorf("%s: %d </section>, want 1", what, n)
		}
		for _, want := range []string{
			`id="webswarm-abcd00000000"`,
			`document.getElementById("webswarm-abcd00000000")`,
			`data-torrent="/pub/a%3Cscript%3E.iso.torrent"`, // a path: works on any host name of the site
			`data-bundle="/webtorrent/webtorrent.min.js"`,
			`data-ice="[]"`, // no STUN server unless the admin names one
			`<label for="webswarm-abcd00000000-bar">`,
			`<progress id="webswarm-abcd00000000-bar"`,
			`role="status" aria-live="polite"`,
			`<button type="button"`,
			`href="http://example.org/pub/a%3Cscript%3E.iso"`, // the plain link, the fallback
			"32 MiB",
		} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s lacks %s", what, want)
			}
		}
		if strings.Contains(doc, "cdn") || strings.Contains(doc, "//unpkg") || strings.Contains(doc, "jsdelivr") {
			t.Errorf("%s refers to a CDN", what)
		}
		if got := strings.Contains(doc, "<!DOCTYPE html>"); got != (what == "page") {
			t.Errorf("%s: a whole document: %v", what, got)
		}
	}
}

// TestPageMaxSize: above --page-max-size the page offers no download in the browser, which
// would hold the whole file in memory.
func TestPageMaxSize(t *testing.T) {
	for _, tc := range []struct {
		size, max int64
		browser   bool
	}{
		{1 << 30, DefaultPageMaxSize, true},
		{1<<30 + 1, DefaultPageMaxSize, false},
		{1, 0, false},
	} {
		made := &metafile.Made{Name: "x.iso", TotalLength: tc.size}
		info, err := newPageInfo(made, "http://example.org/x.iso.torrent", "http://example.org/x.iso", DefaultBundleURL, nil, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := info.render("page")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(doc, "<script") && strings.Contains(doc, "<button"); got != tc.browser {
			t.Errorf("%d bytes, max %d: download in the browser %v, want %v", tc.size, tc.max, got, tc.browser)
		}
		if !strings.Contains(doc, `href="http://example.org/x.iso"`) || !strings.Contains(doc, `href="/x.iso.torrent"`) {
			t.Errorf("%d bytes, max %d: no plain link or .torrent:\n%s", tc.size, tc.max, doc)
		}
		if !tc.browser && !strings.Contains(doc, "too large to download inside a browser tab") {
			t.Errorf("%d bytes, max %d: does not say why", tc.size, tc.max)
		}
	}
}

func TestPageSTUN(t *testing.T) {
	made := &metafile.Made{Name: "x.iso", InfoHash: [20]byte{1}}
	info, err := newPageInfo(made, "https://example.org/x.iso.torrent", "https://example.org/x.iso", "/js/wt.js", []string{"stun:stun.example.org:3478"}, DefaultPageMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := info.render("box")
	if err != nil {
		t.Fatal(err)
	}
	var ice []map[string][]string
	if err := json.Unmarshal([]byte(info.ICE), &ice); err != nil || len(ice) != 1 || !slices.Equal(ice[0]["urls"], []string{"stun:stun.example.org:3478"}) {
		t.Errorf("ICE %s (%v)", info.ICE, err)
	}
	if !strings.Contains(doc, `data-ice="[{&#34;urls&#34;:[&#34;stun:stun.example.org:3478&#34;]}]"`) || !strings.Contains(doc, `data-bundle="/js/wt.js"`) {
		t.Errorf("box:\n%s", doc)
	}
}

// TestPublishPage: --page writes FILE.html, --html prints the box, and the torrent lists the
// WebSocket tracker in its own tier after the HTTP one.
func TestPublishPage(t *testing.T) {
	docroot, file := publishFixture(t)
	out, errOut, err := runPublishCmd(t, file, "--docroot", docroot, "--no-agent", "--page", "--html", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var j madeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if j.Page != file+".html" || j.PageURL != "http://127.0.0.1:1/iso/big.iso.html" || j.WSTracker != "ws://127.0.0.1:1/announce" {
		t.Errorf("page %q at %q, ws tracker %q", j.Page, j.PageURL, j.WSTracker)
	}
	page, err := os.ReadFile(file + ".html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `data-torrent="/iso/big.iso.torrent"`) || !strings.Contains(j.Box, `data-torrent="/iso/big.iso.torrent"`) || strings.Contains(j.Box, "<html") {
		t.Errorf("page:\n%s\nbox:\n%s", page, j.Box)
	}
	tor := loadTorrent(t, file+".torrent")
	if want := [][]string{{"http://127.0.0.1:1/announce"}, {"ws://127.0.0.1:1/announce"}}; !tiersEqual(tor.Trackers, want) {
		t.Errorf("tiers %v, want %v", tor.Trackers, want)
	}

	// Again without --force: the page is not overwritten, nor the torrent.
	if _, _, err := runPublishCmd(t, file, "--docroot", docroot, "--no-agent", "--page"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("publish over an existing page: %v", err)
	}
}

// TestPublishPageDirectory: a directory's page is DIR.html beside it, and offers a Save link a
// file (the script hands over every file of a multi-file torrent).
func TestPublishPageDirectory(t *testing.T) {
	docroot := t.TempDir()
	dir := filepath.Join(docroot, "pub", "my set")
	for _, f := range []string{"a.bin", "b.bin"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.Repeat(f, 5000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := runPublishCmd(t, dir, "--docroot", docroot, "--no-agent", "--page", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var j madeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if j.Page != dir+".html" || j.PageURL != "http://127.0.0.1:1/pub/my%20set.html" {
		t.Errorf("page %q at %q", j.Page, j.PageURL)
	}
	page, err := os.ReadFile(dir + ".html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `data-torrent="/pub/my%20set.torrent"`) || !strings.Contains(string(page), "for (const f of torrent.files)") {
		t.Errorf("page:\n%s", page)
	}
}

func TestPublishWSTrackerTiers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want [][]string
	}{
		{[]string{"--site", "https://example.org/"}, [][]string{{"https://example.org/announce"}, {"wss://example.org/announce"}}},
		{[]string{"--site", "https://example.org", "--ws-tracker", "none"}, [][]string{{"https://example.org/announce"}}},
		{[]string{"--site", "http://example.org", "--ws-tracker", "wss://t.example.org/announce", "-t", "udp://t.example.org:6969"},
			[][]string{{"http://example.org/announce"}, {"wss://t.example.org/announce"}, {"udp://t.example.org:6969"}}},
		{[]string{"--site", "http://example.org", "--tracker-path", "udp://t.example.org:6969"}, [][]string{{"udp://t.example.org:6969"}}},
	} {
		docroot, file := publishFixture(t)
		_, errOut, err := runPublishCmd(t, append([]string{file, "--docroot", docroot, "--no-agent"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, errOut)
		}
		if got := loadTorrent(t, file+".torrent").Trackers; !tiersEqual(got, tc.want) {
			t.Errorf("%v: tiers %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestPublishPageFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bundle-url", "javascript:alert(1)"}, "--bundle-url"},
		{[]string{"--bundle-url", "//cdn.example/wt.js"}, "--bundle-url"},
		{[]string{"--bundle-url", "webtorrent.min.js"}, "--bundle-url"},
		{[]string{"--stun", "http://stun.example.org"}, "--stun"},
		{[]string{"--stun", "stun:"}, "--stun"},
		{[]string{"--ws-tracker", "http://example.org/announce"}, "--ws-tracker"},
		{[]string{"--page-max-size", "-1"}, "--page-max-size"},
		{[]string{"--page-max-size", "lots"}, "page-max-size"},
		{[]string{"--page", "-o", "/tmp/outside-the-docroot.torrent"}, "document root"},
	} {
		docroot, file := publishFixture(t)
		_, _, err := runPublishCmd(t, append([]string{file, "--docroot", docroot, "--no-agent"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
		if _, err := os.Stat(file + ".html"); err == nil {
			t.Errorf("%v: a page was written", tc.args)
		}
		os.Remove("/tmp/outside-the-docroot.torrent")
	}
}

func loadTorrent(t *testing.T, path string) *metafile.Torrent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tor, err := metafile.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return tor
}

func tiersEqual(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}
