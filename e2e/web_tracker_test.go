package e2e

// The tracker behind real Apache and nginx, on each of the four paths (HTTP proxy and FastCGI
// on a unix socket, for each server), through the shipped snippets included unchanged.

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// webSite is a tracker with a front end in front of it, on one path.
type webSite struct {
	Path    webPath
	Dir     string // the front end's directory (htdocs/, logs, the FastCGI socket)
	Front   *webFront
	Tracker *trackerProc
	args    []string // the tracker's extra arguments, for a restart
}

// webStartSite starts a tracker and the front end of path p in front of it.
func webStartSite(t *testing.T, p webPath) *webSite {
	t.Helper()
	dir := webDir(t)
	webWriteStatic(t, dir)
	be := webBackend{FCGISocket: filepath.Join(dir, "tracker.sock")}
	var args []string
	switch {
	case p.FCGI && p.TCP:
		be.FCGIAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, "127.0.0.1"))
		args = append(args, "--fcgi", be.FCGIAddr)
	case p.FCGI:
		// The socket lives in the front end's directory, which its workers can traverse, with
		// the permissions the READMEs recommend: the workers' group, mode 0660.
		_, group := webUser(t)
		args = append(args, "--fcgi", "unix:"+be.FCGISocket, "--fcgi_socket_mode", "0660", "--fcgi_socket_group", group)
	}
	s := &webSite{Path: p, Dir: dir, args: args}
	s.Tracker = startTracker(t, args...)
	if p.FCGI {
		testenv.WaitFor(t, 10*time.Second, "the tracker's FastCGI listener", func() error {
			if p.TCP {
				c, err := net.DialTimeout("tcp", be.FCGIAddr, time.Second)
				if err == nil {
					c.Close()
				}
				return err
			}
			_, err := os.Stat(be.FCGISocket)
			return err
		})
	}
	be.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", s.Tracker.Port)
	s.Front = webStartFront(t, p, dir, be)
	return s
}

// restartTracker starts the tracker again on the same port, socket and state file.
func (s *webSite) restartTracker(t *testing.T) {
	t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.Tracker.Port), "--dfile", s.Tracker.Dfile}, s.args...)
	s.Tracker = startTracker(t, args...)
}

// webRandHash returns a random 20-byte info-hash.
func webRandHash(t testing.TB) [20]byte {
	var h [20]byte
	if _, err := rand.Read(h[:]); err != nil {
		t.Fatal(err)
	}
	return h
}

// webAnnounce sends one announce through the front end with client c (bound to its own
// address) and extra request headers, and returns the decoded reply; any failure is fatal.
func webAnnounce(t testing.TB, c *http.Client, base, query string, header map[string]string) *announceResp {
	t.Helper()
	r, err := webTryAnnounce(c, base, query, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// webTryAnnounce is webAnnounce returning the error.
func webTryAnnounce(c *http.Client, base, query string, header map[string]string) (*announceResp, error) {
	code, _, body, err := webGet(c, base+"/announce?"+query, header)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("announce: status %d: %s", code, testenv.Tail(body, 300))
	}
	var r announceResp
	if err := bencode.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("announce reply %q: %w", testenv.Tail(body, 300), err)
	}
	if r.FailureReason != "" {
		return nil, fmt.Errorf("announce: failure reason: %s", r.FailureReason)
	}
	return &r, nil
}

// webPeers decodes the reply's peer list, fatal on error.
func webPeers(t testing.TB, r *announceResp) []string {
	t.Helper()
	peers, err := compactPeers(r.Peers)
	if err != nil {
		t.Fatal(err)
	}
	return peers
}

// webScrape scrapes the raw info_hash query through the front end with c and returns the files
// dictionary.
func webScrape(t testing.TB, c *http.Client, base, query string) map[string]scrapeStats {
	t.Helper()
	code, _, body, err := webGet(c, base+"/scrape?"+query, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("scrape (%d bytes of query): %d %v %s", len(query), code, err, testenv.Tail(body, 300))
	}
	var r struct {
		FailureReason string                 `bencode:"failure reason"`
		Files         map[string]scrapeStats `bencode:"files"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("scrape reply %q: %v", testenv.Tail(body, 300), err)
	}
	if r.FailureReason != "" {
		t.Fatalf("scrape: failure reason: %s", r.FailureReason)
	}
	return r.Files
}

// webSpoof is what a lying client adds to its announces.
var webSpoof = map[string]string{
	"X-Real-IP":          "6.6.6.6",
	"X-Forwarded-For":    "7.7.7.7",
	"X-Forwarded-Prefix": "/evil",
}

func TestWebTracker(t *testing.T) {
	for _, p := range webPaths {
		t.Run(p.Name, func(t *testing.T) {
			s := webStartSite(t, p)
			base := s.Front.URL
			t.Run("mime", func(t *testing.T) { webCheckStatic(t, s.Front) })
			t.Run("addresses", func(t *testing.T) { webTestAddresses(t, base) })
			t.Run("ipv6", func(t *testing.T) { webTestIPv6(t, s.Front.URL6) })
			t.Run("binary", func(t *testing.T) { webTestBinary(t, base) })
			t.Run("scrape200", func(t *testing.T) { webTestScrape200(t, base) })
			t.Run("stats", func(t *testing.T) { webTestStats(t, base) })
			t.Run("download", func(t *testing.T) { webTestDownload(t, s) })
			// Last: the restarted tracker belongs to this subtest and stops with it.
			t.Run("restart", func(t *testing.T) { webTestRestart(t, s) })
		})
	}
}

// Announces from distinct client addresses are recorded with those addresses, whatever
// X-Real-IP / X-Forwarded-For the clients send.
func webTestAddresses(t *testing.T, base string) {
	ih := webRandHash(t)
	a, b := webClient("127.0.0.2"), webClient("127.0.0.3")
	webAnnounce(t, a, base, announceQuery(ih, "-WS0001-aaaaaaaaaaaa", 40001, 100, "compact=1", "numwant=50", "event=started"), webSpoof)
	rb := webAnnounce(t, b, base, announceQuery(ih, "-WS0001-bbbbbbbbbbbb", 40002, 100, "compact=1", "numwant=50", "event=started"), webSpoof)
	if got := webPeers(t, rb); !slices.Equal(got, []string{"127.0.0.2:40001"}) {
		t.Errorf("second client's peers = %v, want [127.0.0.2:40001]", got)
	}
	ra := webAnnounce(t, a, base, announceQuery(ih, "-WS0001-aaaaaaaaaaaa", 40001, 100, "compact=1", "numwant=50"), nil)
	if got := webPeers(t, ra); !slices.Equal(got, []string{"127.0.0.3:40002"}) {
		t.Errorf("first client's peers = %v, want [127.0.0.3:40002]", got)
	}
}

// An IPv6 client is recorded with its IPv6 address (X-Real-IP "::1", or REMOTE_ADDR), whatever
// it claims in headers, and handed out in peers6.
func webTestIPv6(t *testing.T, base6 string) {
	ih := webRandHash(t)
	c := webClient("::1")
	webAnnounce(t, c, base6, announceQuery(ih, "-WS0001-ipv6ipv6ipv6", 40051, 100, "compact=1", "event=started"), webSpoof)
	// The tracker tells a client the address it sees (BEP 24 "external ip").
	var ext struct {
		IP []byte `bencode:"external ip"`
	}
	if err := bencode.Unmarshal(webRaw(t, c, base6+"/announce?"+announceQuery(ih, "-WS0001-ipv6ipv6ipv6", 40051, 100, "compact=1"), webSpoof), &ext); err != nil {
		t.Fatal(err)
	}
	if len(ext.IP) > 0 && !net.IP(ext.IP).Equal(net.IPv6loopback) {
		t.Errorf("external ip = %v, want ::1", net.IP(ext.IP))
	}
	second := webAnnounce(t, c, base6, announceQuery(ih, "-WS0001-ipv6ipv6ipv7", 40052, 100, "compact=1", "event=started"), webSpoof)
	var got []string
	for i := 0; i+18 <= len(second.Peers6); i += 18 {
		port := int(second.Peers6[i+16])<<8 | int(second.Peers6[i+17])
		got = append(got, net.JoinHostPort(net.IP(second.Peers6[i:i+16]).String(), strconv.Itoa(port)))
	}
	if !slices.Equal(got, []string{"[::1]:40051"}) {
		t.Errorf("peers6 = %v (peers %q), want [[::1]:40051]", got, second.Peers)
	}
}

// webRaw GETs url with c and header and returns the body of a 200 reply.
func webRaw(t testing.TB, c *http.Client, url string, header map[string]string) []byte {
	t.Helper()
	code, _, body, err := webGet(c, url, header)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v %s", url, code, err, testenv.Tail(body, 200))
	}
	return body
}

// Binary info_hash and peer_id bytes — ';', '+', NUL, '/', '%' — reach the tracker intact,
// in upper- and lower-case escapes.
func webTestBinary(t *testing.T, base string) {
	var ih [20]byte
	copy(ih[:], ";+\x00/%&=?# \xff\x80;+\x00/%abc")
	seederID := "-WS0001-;+\x00/%&=?#\xff\x00x"
	upper := announceQuery(ih, seederID, 40011, 0, "compact=1", "event=started")
	a, b := webClient("127.0.0.4"), webClient("127.0.0.5")
	webAnnounce(t, a, base, upper, nil)
	// The second peer spells its escapes in lower case, as libtorrent and Transmission do.
	lower := regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(
		announceQuery(ih, "-WS0001-%+;\x00/\x01\x02\x03\x04\x05\x06\x07", 40012, 7, "compact=1", "event=started"),
		strings.ToLower)
	rb := webAnnounce(t, b, base, lower, nil)
	if got := webPeers(t, rb); !slices.Equal(got, []string{"127.0.0.4:40011"}) {
		t.Errorf("peers on the binary info_hash = %v, want [127.0.0.4:40011]", got)
	}
	// A third leaves ';' and '+' unescaped: the front end must pass them as they are.
	loose := strings.NewReplacer("%3B", ";", "%2B", "+").Replace(
		announceQuery(ih, "-WS0001-;;++\x00\x00//%%==", 40013, 3, "compact=1", "event=started"))
	if !strings.Contains(loose, "info_hash=;+") {
		t.Fatalf("test bug: %s", loose)
	}
	rc := webAnnounce(t, webClient("127.0.0.9"), base, loose, nil)
	got := webPeers(t, rc)
	slices.Sort(got)
	if !slices.Equal(got, []string{"127.0.0.4:40011", "127.0.0.5:40012"}) {
		t.Errorf("peers on the binary info_hash (literal ';', '+') = %v, want [127.0.0.4:40011 127.0.0.5:40012]", got)
	}
	files := webScrape(t, a, base, "info_hash="+escapeBytes(ih[:]))
	if st, ok := files[string(ih[:])]; !ok || st.Complete != 1 || st.Incomplete != 2 {
		t.Errorf("scrape of the binary info_hash: %+v (present %v), want complete 1, incomplete 2; files has %d keys", st, ok, len(files))
	}
	// The seeder stops with the same binary peer_id: if the tracker saw the same bytes, it
	// forgets that peer.
	webAnnounce(t, a, base, announceQuery(ih, seederID, 40011, 0, "compact=1", "event=stopped"), nil)
	files = webScrape(t, a, base, "info_hash="+escapeBytes(ih[:]))
	if st := files[string(ih[:])]; st.Complete != 0 || st.Incomplete != 2 {
		t.Errorf("after the seeder stopped: %+v, want complete 0, incomplete 2", st)
	}
}

// A scrape of 200 info-hashes passes the front end (no 414) and reports all of them.
func webTestScrape200(t *testing.T, base string) {
	c := webClient("127.0.0.6")
	var q strings.Builder
	hashes := make([][20]byte, 200)
	for i := range hashes {
		hashes[i] = webRandHash(t)
		webAnnounce(t, c, base, announceQuery(hashes[i], "-WS0001-scrapescrape", 40020, 1, "compact=1", "numwant=0", "event=started"), nil)
		if i > 0 {
			q.WriteByte('&')
		}
		q.WriteString("info_hash=" + escapeBytes(hashes[i][:]))
	}
	files := webScrape(t, c, base, q.String())
	for i, h := range hashes {
		if st, ok := files[string(h[:])]; !ok || st.Incomplete != 1 {
			t.Fatalf("scrape of 200: hash %d: %+v (present %v), want incomplete 1; %d files", i, st, ok, len(files))
		}
	}
}

// The stats pages answer under /tracker/ and every link on them resolves there; metrics are
// for this machine only.
func webTestStats(t *testing.T, base string) {
	c := webClient("127.0.0.2")
	// A torrent to list, so the page has its table (and the table its sorting links).
	webAnnounce(t, c, base, announceQuery(webRandHash(t), "-WS0001-statsstatsst", 40040, 0, "compact=1", "event=started"), nil)
	code, h, _, err := webGet(c, base+"/tracker", nil)
	if err != nil || code != http.StatusMovedPermanently || !strings.HasSuffix(h.Get("Location"), "/tracker/") {
		t.Errorf("GET /tracker: %d, Location %q, %v; want 301 to /tracker/", code, h.Get("Location"), err)
	}
	code, h, body, err := webGet(c, base+"/tracker/stats.json", nil)
	if err != nil || code != 200 || !json.Valid(body) {
		t.Errorf("GET /tracker/stats.json: %d %q %v: %s", code, h.Get("Content-Type"), err, testenv.Tail(body, 200))
	}
	code, _, body, err = webGet(c, base+"/tracker/healthz", nil)
	if err != nil || code != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET /tracker/healthz: %d %v %q", code, err, body)
	}
	code, _, _, err = webGet(c, base+"/tracker/metrics", nil)
	if err != nil || code != http.StatusForbidden {
		t.Errorf("GET /tracker/metrics from 127.0.0.2: %d %v, want 403", code, err)
	}
	code, _, body, err = webGet(webClient("127.0.0.1"), base+"/tracker/metrics", nil)
	if err != nil || code != 200 || !strings.Contains(string(body), "webswarm_tracker_") {
		t.Errorf("GET /tracker/metrics from 127.0.0.1: %d %v %s", code, err, testenv.Tail(body, 200))
	}
	webCrawl(t, c, base, "/tracker/", "/tracker/stats")
}

// webLink finds href and src attributes in HTML.
var webLink = regexp.MustCompile(`(?i)\b(?:href|src)\s*=\s*["']([^"']*)["']`)

// webCrawl follows every link from the start pages (same site, breadth first, at most 60
// pages): each must answer 200, after redirects, at a path under /tracker/.
func webCrawl(t *testing.T, c *http.Client, base string, start ...string) {
	t.Helper()
	root, err := url.Parse(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var queue []*url.URL
	for _, s := range start {
		u := root.ResolveReference(&url.URL{Path: s})
		queue = append(queue, u)
		seen[u.String()] = true
	}
	for pages := 0; len(queue) > 0 && pages < 60; pages++ {
		u := queue[0]
		queue = queue[1:]
		final, code, ctype, body := webFollow(t, c, u)
		if code != 200 || !strings.HasPrefix(final.Path, "/tracker/") {
			t.Errorf("link %s: ends at %s with %d; want 200 under /tracker/", u, final, code)
			continue
		}
		if !strings.Contains(ctype, "html") {
			continue
		}
		for _, m := range webLink.FindAllStringSubmatch(string(body), -1) {
			ref, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
			if err != nil {
				t.Errorf("page %s: bad link %q: %v", final, m[1], err)
				continue
			}
			next := final.ResolveReference(ref)
			next.Fragment = ""
			if next.Host != root.Host || next.Scheme != root.Scheme || seen[next.String()] {
				continue // another site, or done already
			}
			seen[next.String()] = true
			queue = append(queue, next)
		}
	}
	if len(seen) < 5 {
		t.Errorf("crawl found only %d pages: %v", len(seen), seen)
	}
	t.Logf("crawled %d pages under /tracker/", len(seen))
}

// webFollow GETs u, following up to 5 redirects, and returns where it ended.
func webFollow(t *testing.T, c *http.Client, u *url.URL) (*url.URL, int, string, []byte) {
	t.Helper()
	for range 6 {
		code, h, body, err := webGet(c, u.String(), nil)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			return u, 0, "", nil
		}
		if code < 300 || code > 399 {
			return u, code, h.Get("Content-Type"), body
		}
		loc, err := url.Parse(h.Get("Location"))
		if err != nil {
			t.Errorf("GET %s: bad Location %q", u, h.Get("Location"))
			return u, code, "", nil
		}
		u = u.ResolveReference(loc)
	}
	t.Errorf("GET %s: too many redirects", u)
	return u, 0, "", nil
}

// With the tracker down the front end answers 502/503; once the tracker is back, announces
// succeed again without touching the web server.
func webTestRestart(t *testing.T, s *webSite) {
	c := webClient("127.0.0.2")
	ih := webRandHash(t)
	q := announceQuery(ih, "-WS0001-restartresta", 40030, 1, "compact=1")
	webAnnounce(t, c, s.Front.URL, q, nil)
	// A crash, the harder case: nothing is closed, a unix socket stays behind.
	s.Tracker.Proc.Kill()
	code, _, body, err := webGet(c, s.Front.URL+"/announce?"+q, nil)
	if err != nil || (code != http.StatusBadGateway && code != http.StatusServiceUnavailable) {
		t.Errorf("announce with the tracker stopped: %d %v %s; want 502 or 503", code, err, testenv.Tail(body, 200))
	}
	s.restartTracker(t)
	back, tries := time.Now(), 0
	testenv.WaitFor(t, 15*time.Second, "announces through "+s.Path.Name+" after the tracker's restart", func() error {
		tries++
		_, err := webTryAnnounce(c, s.Front.URL, q, nil)
		return err
	})
	t.Logf("announces through %s again %v after the tracker answered /healthz (%d tries)", s.Path.Name, time.Since(back).Round(time.Millisecond), tries)
	if done, _ := s.Front.Proc.Exited(); done {
		t.Errorf("%s exited", s.Path.Server)
	}
}

// A real client downloads, from a real seeder, a payload whose .torrent it fetched from the
// web server, announcing through the web server; the bytes verify. aria2 seeds; aria2 downloads
// behind Apache, libtorrent behind nginx.
func webTestDownload(t *testing.T, s *webSite) {
	seedDir := filepath.Join(t.TempDir(), "seed")
	payload := writePayload(t, seedDir, "payload.bin", 3<<20+12345)
	torrent := makeTorrent(t, filepath.Join(seedDir, "payload.bin"), s.Front.URL+"/announce")
	data, err := os.ReadFile(torrent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "htdocs", "payload.bin.torrent"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ti := readTorrent(t, torrent)

	startAria2Seed(t, torrent, seedDir, "127.0.0.7")
	// The getter must find the seeder in its first peer list: wait until the seeder has
	// announced (its hash check done), as the site reports it.
	c := webClient("127.0.0.1")
	testenv.WaitFor(t, 30*time.Second, "the seeder's announce", func() error {
		files := webScrape(t, c, s.Front.URL, "info_hash="+escapeBytes(ti.InfoHash[:]))
		if st := files[string(ti.InfoHash[:])]; st.Complete < 1 {
			return fmt.Errorf("scrape: %+v", st)
		}
		return nil
	})
	outDir := filepath.Join(t.TempDir(), "get")
	torrentURL := s.Front.URL + "/payload.bin.torrent"
	if s.Path.Server == "apache" {
		// aria2 fetches the .torrent from the web server itself, then downloads what it names.
		aria2Get(t, torrentURL, outDir, "127.0.0.8", 2*time.Minute)
	} else {
		// libtorrent (lt.py) takes a file: fetch it from the web server as a browser would,
		// with the type that makes a browser hand it to the client.
		code, h, body, err := webGet(webClient("127.0.0.8"), torrentURL, nil)
		if err != nil || code != 200 || h.Get("Content-Type") != "application/x-bittorrent" {
			t.Fatalf("GET %s: %d %q %v", torrentURL, code, h.Get("Content-Type"), err)
		}
		fetched := filepath.Join(t.TempDir(), "payload.bin.torrent")
		if err := os.WriteFile(fetched, body, 0o644); err != nil {
			t.Fatal(err)
		}
		libtorrentGet(t, fetched, outDir, "127.0.0.8", 2*time.Minute)
	}
	sameFile(t, filepath.Join(outDir, "payload.bin"), payload)
}
