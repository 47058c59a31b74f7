package stats

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// clock is swarm's settable fake clock, for stores and the code built on them.
type clock struct{ *swarm.FakeClock }

func newClock() *clock { return &clock{swarm.NewFakeClock(time.Unix(1_800_000_000, 0))} }

func (c *clock) Add(d time.Duration) { c.Advance(d) }

func newStore(t testing.TB, clk *clock) *swarm.Memory {
	t.Helper()
	m, err := swarm.NewMemory(swarm.Config{Now: clk.Now, Shards: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func ih(i int) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	copy(h[:], fmt.Sprintf("torrent-%012d", i))
	return h
}

func announce(t testing.TB, s swarm.Store, h bittorrent.InfoHash, id string, addr string, left uint64, ev swarm.Event) {
	t.Helper()
	var pid bittorrent.PeerID
	copy(pid[:], id)
	var out swarm.PeerList
	if _, err := s.Announce(&swarm.Announce{InfoHash: h, PeerID: pid, Addr: netip.MustParseAddrPort(addr), Left: left, Event: ev}, &out); err != nil {
		t.Fatal(err)
	}
}

// names is a NameSource (and Ranger) over a map.
type names map[bittorrent.InfoHash]struct {
	name string
	size int64
}

func (n names) Info(ih bittorrent.InfoHash) (string, int64, bool) {
	e, ok := n[ih]
	return e.name, e.size, ok
}

func (n names) Range(fn func(bittorrent.InfoHash, string, int64) bool) {
	for ih, e := range n {
		if !fn(ih, e.name, e.size) {
			return
		}
	}
}

// smallTracker: two torrents, peers of several clients over IPv4 and IPv6, a named torrent
// with a hostile name, and an allowed torrent without peers.
func smallTracker(t *testing.T) (*swarm.Memory, names, *clock) {
	clk := newClock()
	s := newStore(t, clk)
	announce(t, s, ih(1), "-TR3000-aaaaaaaaaaaa", "198.51.100.77:6881", 0, swarm.Completed)
	announce(t, s, ih(1), "-LT2080-bbbbbbbbbbbb", "198.51.100.77:6882", 10, swarm.Started)
	announce(t, s, ih(1), "-qB4520-cccccccccccc", "[2001:db8::beef]:51413", 10, swarm.Started)
	announce(t, s, ih(1), "-DE2000-ffffffffffff", "[2001:db8::beef]:51414", 10, swarm.Started) // same address
	announce(t, s, ih(2), "M3-4-2--dddddddddddd", "203.0.113.9:6881", 0, swarm.Started)
	announce(t, s, ih(2), "-ZZ0000-eeeeeeeeeeee", "[2001:db8::cafe]:6881", 0, swarm.Completed)
	n := names{
		ih(1): {"<script>alert(1)</script>", 1 << 30},
		ih(3): {"allowed-no-peers.iso", 5000},
	}
	return s, n, clk
}

func get(t *testing.T, h func(w2 *httptest.ResponseRecorder)) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h(rec)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func serveHTML(t *testing.T, p *Page, target string) string {
	return get(t, func(w *httptest.ResponseRecorder) { p.ServeHTML(w, httptest.NewRequest("GET", target, nil)) })
}

func serveJSON(t *testing.T, p *Page, target string) JSON {
	t.Helper()
	body := get(t, func(w *httptest.ResponseRecorder) { p.ServeJSON(w, httptest.NewRequest("GET", target, nil)) })
	var j JSON
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		t.Fatalf("stats.json: %v\n%s", err, body)
	}
	return j
}

func TestHTMLHasBttrackElements(t *testing.T) {
	s, n, clk := smallTracker(t)
	p := New(Config{Store: s, Names: n, ShowNames: true, Version: "9.8.7", Now: clk.Now})
	body := serveHTML(t, p, "/tracker/")
	for _, want := range []string{
		"<title>BitTorrent download info</title>",
		"<h3>BitTorrent download info</h3>",
		"<strong>tracker version:</strong> 9.8.7",
		"<strong>server time:</strong> " + clk.Now().UTC().Format("2006-01-02 15:04") + " UTC",
		">info hash<", ">torrent name<", ">complete<", ">downloading<", ">downloaded<", ">transferred<",
		ih(1).String(), ih(2).String(),
		"allowed-no-peers.iso", // listed from the allow-list without peers
		">3 files<",
		">3/3<",            // seeders: unique IPs / total (198.51.100.77, 203.0.113.9, 2001:db8::cafe)
		">2/2<",            // leechers: 198.51.100.77 and 2001:db8::beef
		">2/2<",            // downloaded: current/all
		">1GiB<", ">1GiB<", // size of torrent 1, transferred 1 × 1 GiB
		"<em>transferred:</em> torrent size * total downloaded (does not include partial transfers)",
		"unique IPs/total connections",
		">libtorrent<", ">transmission<", ">qbittorrent<", ">mainline<", ">other<",
		`<a href="stats.json">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if regexp.MustCompile(`server time:</strong> \d{4}-\d\d-\d\d \d\d:\d\d UTC`).FindString(body) == "" {
		t.Error("server time not in bttrack's format")
	}
	// Without names shown: bttrack's four columns, the store's torrents only.
	p2 := New(Config{Store: s, Names: n, ShowNames: false, Version: "1", Now: clk.Now})
	body2 := serveHTML(t, p2, "/")
	if strings.Contains(body2, "torrent name") || strings.Contains(body2, ">transferred<") {
		t.Error("name/transferred columns without names")
	}
	if !strings.Contains(body2, ">2 files<") {
		t.Error("without names only the store's torrents are listed")
	}
}

func TestNamesEscaped(t *testing.T) {
	s, n, clk := smallTracker(t)
	p := New(Config{Store: s, Names: n, ShowNames: true, Now: clk.Now})
	body := serveHTML(t, p, "/")
	if strings.Contains(body, "<script>") {
		t.Error("a torrent name reached the page unescaped")
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("escaped name missing")
	}
	j := serveJSON(t, p, "/stats.json?rows=1")
	found := false
	for _, r := range j.Rows {
		found = found || r.Name == "<script>alert(1)</script>"
	}
	if !found {
		t.Error("JSON rows lack the name (JSON carries it as data)")
	}
}

var ipv4Pattern = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

func TestNoPeerAddresses(t *testing.T) {
	s, n, clk := smallTracker(t)
	p := New(Config{Store: s, Names: n, ShowNames: true, Version: "1.0", Now: clk.Now})
	for name, body := range map[string]string{
		"html": serveHTML(t, p, "/"),
		"json": get(t, func(w *httptest.ResponseRecorder) {
			p.ServeJSON(w, httptest.NewRequest("GET", "/stats.json?rows=1", nil))
		}),
	} {
		for _, ip := range []string{"198.51.100.77", "203.0.113.9", "2001:db8", "beef", "cafe"} {
			if strings.Contains(body, ip) {
				t.Errorf("%s shows a peer address (%s)", name, ip)
			}
		}
		if m := ipv4Pattern.FindString(body); m != "" {
			t.Errorf("%s contains an IPv4-like string %q", name, m)
		}
	}
}

var hrefPattern = regexp.MustCompile(`(?i)\b(?:href|src|action)\s*=\s*"([^"]*)"`)

func TestLinksRelative(t *testing.T) {
	s, n, clk := smallTracker(t)
	for i := range 250 {
		announce(t, s, ih(100+i), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:1", 1, swarm.Started)
	}
	for _, cfg := range []Config{{Store: s, Now: clk.Now}, {Store: s, Names: n, ShowNames: true, FileLinks: true, Now: clk.Now}} {
		p := New(cfg)
		body := serveHTML(t, p, "/tracker/stats?page=2")
		links := hrefPattern.FindAllStringSubmatch(body, -1)
		if len(links) < 8 {
			t.Fatalf("only %d links found", len(links))
		}
		for _, m := range links {
			u := html.UnescapeString(m[1])
			if strings.HasPrefix(u, "/") || strings.Contains(u, "//") || strings.Contains(u, ":") {
				t.Errorf("link %q is not relative", u)
			}
			if !strings.HasPrefix(u, "?") && !strings.HasPrefix(u, "stats.json") && !strings.HasPrefix(u, "file?info_hash=") {
				t.Errorf("unexpected link %q", u)
			}
		}
	}
}

func TestPagingAndSorting(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk)
	n := names{}
	type want struct {
		ih                      bittorrent.InfoHash
		name                    string
		size                    int64
		seed, leech, downloaded int
	}
	var all []want
	for i := range 250 {
		w := want{ih: ih(i), name: fmt.Sprintf("file-%03d", (i*37)%250), size: int64((i * 7919) % 1000), seed: i % 5, leech: (i * 3) % 7}
		n[w.ih] = struct {
			name string
			size int64
		}{w.name, w.size}
		for k := range w.seed {
			announce(t, s, w.ih, fmt.Sprintf("-TR3000-s%05d%05d", i, k), fmt.Sprintf("10.1.%d.%d:1", i%250, k), 0, swarm.Completed)
		}
		for k := range w.leech {
			announce(t, s, w.ih, fmt.Sprintf("-TR3000-l%05d%05d", i, k), fmt.Sprintf("10.2.%d.%d:1", i%250, k), 1, swarm.Started)
		}
		if w.seed+w.leech == 0 {
			announce(t, s, w.ih, "-TR3000-xxxxxxxxxxxx", "10.3.0.1:1", 1, swarm.Started)
			w.leech = 1
		}
		w.downloaded = w.seed
		all = append(all, w)
	}
	p := New(Config{Store: s, Names: n, ShowNames: true, Now: clk.Now})
	keyOf := map[string]func(w want) int64{
		SortSize:        func(w want) int64 { return w.size },
		SortComplete:    func(w want) int64 { return int64(w.seed) },
		SortDownloading: func(w want) int64 { return int64(w.leech) },
		SortDownloaded:  func(w want) int64 { return int64(w.downloaded) },
		SortTransferred: func(w want) int64 { return w.size * int64(w.downloaded) },
	}
	for _, key := range sortKeys {
		for _, order := range []string{"asc", "desc"} {
			exp := slices.Clone(all)
			slices.SortFunc(exp, func(a, b want) int {
				var c int
				switch key {
				case SortInfoHash:
					c = 0
				case SortName:
					c = strings.Compare(a.name, b.name)
				default:
					c = cmp.Compare(keyOf[key](a), keyOf[key](b))
				}
				if order == "desc" {
					c = -c
				}
				if c != 0 {
					return c
				}
				return bytes.Compare(a.ih[:], b.ih[:])
			})
			var got []string
			for page := 1; page <= 3; page++ {
				j := serveJSON(t, p, fmt.Sprintf("/stats.json?rows=1&sort=%s&order=%s&page=%d", key, order, page))
				if j.Page.Pages != 3 || j.Page.Page != page || j.Page.Total != 250 || j.Page.Sort != key || j.Page.Order != order {
					t.Fatalf("%s %s page %d: %+v", key, order, page, j.Page)
				}
				if wantLen := []int{100, 100, 50}[page-1]; len(j.Rows) != wantLen {
					t.Errorf("%s %s page %d: %d rows, want %d", key, order, page, len(j.Rows), wantLen)
				}
				for _, r := range j.Rows {
					got = append(got, r.InfoHash)
				}
				// The HTML page shows the same rows in the same order.
				body := serveHTML(t, p, fmt.Sprintf("/?sort=%s&order=%s&page=%d", key, order, page))
				hashes := regexp.MustCompile(`<code>([0-9a-f]{40})</code>`).FindAllStringSubmatch(body, -1)
				for k, h := range hashes {
					if h[1] != j.Rows[k].InfoHash {
						t.Fatalf("%s %s page %d row %d: HTML %s, JSON %s", key, order, page, k, h[1], j.Rows[k].InfoHash)
					}
				}
			}
			for k := range exp {
				if h := hex.EncodeToString(exp[k].ih[:]); got[k] != h {
					t.Fatalf("sort=%s order=%s: row %d is %s, want %s", key, order, k, got[k], h)
				}
			}
		}
	}
	// Out-of-range and junk parameters are clamped to defaults.
	if j := serveJSON(t, p, "/stats.json?rows=1&page=99&sort=bogus&order=sideways"); j.Page.Page != 3 || j.Page.Sort != SortInfoHash || j.Page.Order != "asc" {
		t.Errorf("clamped page: %+v", j.Page)
	}
	if j := serveJSON(t, p, "/stats.json?rows=1&page=-4"); j.Page.Page != 1 {
		t.Errorf("negative page: %+v", j.Page)
	}
	// Each order is sorted once per snapshot.
	tb := p.tables.get()
	o1 := tb.order(SortComplete, true)
	o2 := tb.order(SortComplete, true)
	if &o1[0] != &o2[0] {
		t.Error("order re-sorted within one snapshot")
	}
}

func TestEmptyAndFileLinks(t *testing.T) {
	clk := newClock()
	p := New(Config{Store: newStore(t, clk), Now: clk.Now})
	if body := serveHTML(t, p, "/"); !strings.Contains(body, "<p>not tracking any files yet...</p>") || strings.Contains(body, "<table summary=\"files\"") {
		t.Error("empty tracker: want bttrack's \"not tracking any files yet...\"")
	}
	s, n, clk := smallTracker(t)
	p = New(Config{Store: s, Names: n, ShowNames: true, FileLinks: true, Now: clk.Now})
	if body := serveHTML(t, p, "/"); !strings.Contains(body, `<a href="file?info_hash=`+ih(3).String()+`">allowed-no-peers.iso</a>`) {
		t.Error("name not linked to file?info_hash= with FileLinks")
	}
}

func TestSnapshotCached(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk)
	announce(t, s, ih(1), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:1", 1, swarm.Started)
	p := New(Config{Store: s, Now: clk.Now})
	if body := serveHTML(t, p, "/"); !strings.Contains(body, ">1 files<") {
		t.Fatal("first torrent missing")
	}
	announce(t, s, ih(2), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:1", 1, swarm.Started)
	if body := serveHTML(t, p, "/"); !strings.Contains(body, ">1 files<") {
		t.Error("snapshot rebuilt within its second")
	}
	clk.Add(time.Second)
	if body := serveHTML(t, p, "/"); !strings.Contains(body, ">2 files<") {
		t.Error("snapshot not rebuilt after a second")
	}
}

func TestJSONMatchesCollector(t *testing.T) {
	s, n, clk := smallTracker(t)
	p := New(Config{Store: s, Names: n, ShowNames: true, Now: clk.Now})
	j := serveJSON(t, p, "/stats.json")
	if j.Rows != nil || j.Page != nil {
		t.Error("rows without ?rows=1")
	}
	for name, c := range map[string]prometheus.Collector{"page": p.Collector(), "standalone": NewCollector(s)} {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				k := mf.GetName()
				for _, l := range m.GetLabel() {
					k += "," + l.GetName() + "=" + l.GetValue()
				}
				got[k] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		want := map[string]float64{
			"webswarm_tracker_torrents":        float64(j.Torrents),
			"webswarm_tracker_completed_total": float64(j.Completed),
		}
		for role, fams := range j.PeersByRole {
			for fam, v := range fams {
				want["webswarm_tracker_peers,family="+fam+",role="+role] = float64(v)
			}
		}
		for fam, v := range j.Clients {
			want["webswarm_tracker_clients,family="+fam] = float64(v)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s collector %s = %v, stats.json %v", name, k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s collector has %d series, stats.json %d", name, len(got), len(want))
		}
	}
	// And the figures themselves.
	if j.Torrents != 2 || j.Seeders != 3 || j.Leechers != 3 || j.Completed != 2 ||
		j.Peers["ipv4"] != 3 || j.Peers["ipv6"] != 3 || j.Clients["deluge"] != 1 || j.Clients["libtorrent"] != 1 || j.Clients["other"] != 1 ||
		j.UniqueIPs["seeder"] != 3 || j.UniqueIPs["leecher"] != 2 {
		t.Errorf("stats.json = %+v", j)
	}
	if len(j.Clients) != len(bittorrent.ClientFamilies()) {
		t.Errorf("clients has %d families, want the whole bounded set", len(j.Clients))
	}
}

func TestSizeFormat(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0B"}, {1023, "1023B"}, {1024, "1KiB"}, {5 << 20, "5MiB"}, {1 << 30, "1GiB"},
		{3 << 29, "1.5GiB"}, {1<<40 + 1<<39, "1.5TiB"}, {1<<30 + 1, "1GiB"},
	} {
		if got := sizeFormat(tc.n); got != tc.want {
			t.Errorf("sizeFormat(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// BenchmarkPage100kTorrents serves a sorted page over 100,000 torrents within one snapshot.
func BenchmarkPage100kTorrents(b *testing.B) {
	clk := newClock()
	s := newStore(b, clk)
	for i := range 100_000 {
		announce(b, s, ih(i), "-TR3000-aaaaaaaaaaaa", fmt.Sprintf("10.%d.%d.1:1", i>>8&255, i&255), uint64(i%2), swarm.Started)
	}
	p := New(Config{Store: s, Now: clk.Now})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec := httptest.NewRecorder()
		p.ServeHTML(rec, httptest.NewRequest("GET", fmt.Sprintf("/?sort=complete&order=desc&page=%d", i%1000+1), nil))
	}
}

// BenchmarkSnapshot100kTorrents rebuilds the table and sorts it once.
func BenchmarkSnapshot100kTorrents(b *testing.B) {
	clk := newClock()
	s := newStore(b, clk)
	for i := range 100_000 {
		announce(b, s, ih(i), "-TR3000-aaaaaaaaaaaa", "10.0.0.1:1", uint64(i%2), swarm.Started)
	}
	b.ResetTimer()
	for b.Loop() {
		buildTable(s, nil, clk.Now()).order(SortComplete, true)
	}
}

// BenchmarkCollect200kPeers is one Prometheus scrape over 200,000 peers (cache expired).
func BenchmarkCollect200kPeers(b *testing.B) {
	clk := newClock()
	s := newStore(b, clk)
	var out swarm.PeerList
	for i := range 200_000 {
		var id bittorrent.PeerID
		copy(id[:], fmt.Sprintf("-TR3000-%012d", i))
		a := swarm.Announce{InfoHash: ih(i % 2000), PeerID: id, Left: uint64(i % 2),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)}
		if _, err := s.Announce(&a, &out); err != nil {
			b.Fatal(err)
		}
	}
	c := newCollector(s, &peerCache{store: s, ttl: 0, now: clk.Now})
	ch := make(chan prometheus.Metric, 100)
	go func() {
		for range ch {
		}
	}()
	defer close(ch)
	b.Run("metrics", func(b *testing.B) {
		for b.Loop() {
			c.Collect(ch)
		}
	})
	b.Run("with-unique-ips", func(b *testing.B) {
		for b.Loop() {
			countPeers(s, clk.Now(), true)
		}
	})
}

// fakeWT is a WebTorrentSource: WebSocket peers of torrents.
type fakeWT map[bittorrent.InfoHash]swarm.Counts

func (f fakeWT) RangeTorrents(fn func(bittorrent.InfoHash, swarm.Counts) bool) {
	for ih, c := range f {
		if !fn(ih, c) {
			return
		}
	}
}

func (f fakeWT) Counts(ih bittorrent.InfoHash) (swarm.Counts, bool) {
	c, ok := f[ih]
	return c, ok
}

func (f fakeWT) Totals() (torrents, seeders, leechers int) {
	for _, c := range f {
		torrents++
		seeders += int(c.Complete)
		leechers += int(c.Incomplete)
	}
	return
}

// WebSocket peers join the one swarm view: their torrent's row, the totals, the "webtorrent"
// family of stats.json and of the metrics; a torrent only browsers share gets a row.
func TestWebTorrentPeersCounted(t *testing.T) {
	s, n, clk := smallTracker(t)
	wt := fakeWT{ih(1): {Complete: 1, Incomplete: 2}, ih(9): {Incomplete: 1}}
	torrents := s.Totals().Torrents
	p := New(Config{Store: s, Names: n, ShowNames: true, Now: clk.Now, WebTorrent: wt})
	j := serveJSON(t, p, "/stats.json?rows=1")
	if j.Torrents != torrents+1 {
		t.Errorf("stats.json torrents %d, want %d: the store's and the browser-only one", j.Torrents, torrents+1)
	}
	if j.Seeders != 3+1 || j.Leechers != 3+3 || j.Peers["webtorrent"] != 4 ||
		j.PeersByRole["seeder"]["webtorrent"] != 1 || j.PeersByRole["leecher"]["webtorrent"] != 3 {
		t.Errorf("stats.json totals %+v", j)
	}
	rows := map[string]JSONRow{}
	for _, r := range j.Rows {
		rows[r.InfoHash] = r
	}
	if r := rows[ih(1).String()]; r.Complete != 1+1 || r.Downloading != 3+2 {
		t.Errorf("torrent 1 row %+v, want its HTTP and WebSocket peers", r)
	}
	if r, ok := rows[ih(9).String()]; !ok || r.Downloading != 1 {
		t.Errorf("browser-only torrent row %+v %v", r, ok)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "webswarm_tracker_peers" && labels["family"] == "webtorrent" {
				want := map[string]float64{"seeder": 1, "leecher": 3}[labels["role"]]
				if m.GetGauge().GetValue() != want {
					t.Errorf("peers{%v} = %v, want %v", labels, m.GetGauge().GetValue(), want)
				}
				found++
			}
		}
	}
	if found != 2 {
		t.Errorf("%d webtorrent series, want 2", found)
	}
	page := serveHTML(t, p, "/")
	if !strings.Contains(page, "WebTorrent") {
		t.Error("the page has no WebTorrent row")
	}
}
