package stats

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// Config configures a Page.
type Config struct {
	// Store is the tracker's peer store. Required.
	Store swarm.Store
	// Names gives torrent names and sizes (the allow-list); nil: none. Leave it nil rather
	// than passing a nil pointer. With ShowNames, if it also implements Ranger (allowlist.List
	// does), its torrents are listed even without peers, so torrents nobody seeds show up.
	Names NameSource
	// ShowNames shows the name, size and transferred columns (bttrack's --show_names; needs
	// Names).
	ShowNames bool
	// FileLinks links each name to file?info_hash=HEX (bttrack's --allow_get), relative to
	// the page.
	FileLinks bool
	// WebTorrent is the WebSocket tracker (wsapi.Server), whose peers join every count under
	// the "webtorrent" family; nil: none.
	WebTorrent WebTorrentSource
	// Version is shown as "tracker version".
	Version string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// PageSize is the number of torrents per page (default 100).
	PageSize int
	// CacheFor is how long a table snapshot serves requests (default 1 s); PeerCacheFor how
	// long the per-peer figures do (default PeerCacheFor).
	CacheFor     time.Duration
	PeerCacheFor time.Duration
}

// Page serves the stats page and stats.json. It is safe for concurrent use.
type Page struct {
	cfg    Config
	tables *tableCache
	peers  *peerCache
}

// New returns a Page over cfg.Store.
func New(cfg Config) *Page {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = time.Second
	}
	if cfg.PeerCacheFor <= 0 {
		cfg.PeerCacheFor = PeerCacheFor
	}
	if cfg.Names == nil {
		cfg.ShowNames = false
	}
	// Without names shown, the table is bttrack's: the torrents the store knows, nothing more.
	names := cfg.Names
	if !cfg.ShowNames {
		names = nil
	}
	if cfg.WebTorrent != nil {
		// One swarm view: every count the page and the metrics show includes the browsers.
		cfg.Store = swarm.WithOverlay(cfg.Store, cfg.WebTorrent)
	}
	return &Page{
		cfg:    cfg,
		tables: &tableCache{store: cfg.Store, names: names, ttl: cfg.CacheFor, now: cfg.Now},
		peers:  &peerCache{store: cfg.Store, ws: cfg.WebTorrent, ttl: cfg.PeerCacheFor, now: cfg.Now},
	}
}

// Collector returns a Prometheus collector (see NewCollector) that shares the page's cached
// per-peer figures, so /metrics and stats.json agree.
func (p *Page) Collector() *Collector { return newCollector(p.cfg.Store, p.peers) }

// HTML returns ServeHTML as an http.Handler.
func (p *Page) HTML() http.Handler { return http.HandlerFunc(p.ServeHTML) }

// JSON returns ServeJSON as an http.Handler.
func (p *Page) JSON() http.Handler { return http.HandlerFunc(p.ServeJSON) }

// view is a request's choice of sort, order and page, resolved against a table.
type view struct {
	sort  string
	desc  bool
	page  int // 1-based
	pages int
	rows  []int32 // the page's row indexes
}

func (p *Page) resolve(r *http.Request, t *table) view {
	q := r.URL.Query()
	v := view{sort: q.Get("sort")}
	if !slices.Contains(sortKeys, v.sort) || (!p.cfg.ShowNames && (v.sort == SortName || v.sort == SortSize || v.sort == SortTransferred)) {
		v.sort = SortInfoHash // bttrack's order
	}
	switch q.Get("order") {
	case "asc":
	case "desc":
		v.desc = true
	default:
		v.desc = defaultOrder(v.sort) == "desc"
	}
	n := len(t.rows)
	v.pages = max(1, (n+p.cfg.PageSize-1)/p.cfg.PageSize)
	v.page, _ = strconv.Atoi(q.Get("page"))
	v.page = min(max(v.page, 1), v.pages)
	lo := min((v.page-1)*p.cfg.PageSize, n)
	hi := min(lo+p.cfg.PageSize, n)
	v.rows = t.order(v.sort, v.desc)[lo:hi]
	return v
}

func (v *view) order() string {
	if v.desc {
		return "desc"
	}
	return "asc"
}

// link is a relative link to a view of the same page (the page may be mounted anywhere).
func link(sort, order string, page int) string {
	return fmt.Sprintf("?sort=%s&order=%s&page=%d", sort, order, page)
}

// sizeFormat is bttrack's size_format: B, KiB and MiB truncated to integers, GiB and TiB to two
// decimals.
func sizeFormat(s uint64) string {
	const k, m, g, tb = 1 << 10, 1 << 20, 1 << 30, 1 << 40
	trunc2 := func(x float64) string { return strconv.FormatFloat(float64(int64(x*100))/100, 'f', -1, 64) }
	switch {
	case s < k:
		return strconv.FormatUint(s, 10) + "B"
	case s < m:
		return strconv.FormatUint(s/k, 10) + "KiB"
	case s < g:
		return strconv.FormatUint(s/m, 10) + "MiB"
	case s < tb:
		return trunc2(float64(s)/g) + "GiB"
	}
	return trunc2(float64(s)/tb) + "TiB"
}

type htmlRow struct {
	Hash, FileLink                    string
	Name, Size, Transferred           string
	Complete, Downloading, Downloaded uint32
}

type htmlHeader struct {
	Label, Href, Title string
	Arrow              string
}

type htmlCount struct {
	Label string
	N     int
}

type htmlPage struct {
	Version, ServerTime string
	ShowNames           bool
	Empty               bool
	Headers             []htmlHeader
	Rows                []htmlRow
	// Totals row.
	Files                         int
	UniqueSeeders, Seeders        int
	UniqueLeechers, Leechers      int
	CompletedActive, CompletedAll uint64
	TotalSize, TotalTransferred   string
	Page, Pages                   int
	First, Prev, Next, Last       string
	Clients                       []htmlCount
	V4Seeders, V4Leechers         int
	V6Seeders, V6Leechers         int
	WTSeeders, WTLeechers         int
}

// ServeHTML serves the stats page: ?sort=KEY&order=asc|desc&page=N.
func (p *Page) ServeHTML(w http.ResponseWriter, r *http.Request) {
	t := p.tables.get()
	pc := p.peers.get(true)
	v := p.resolve(r, t)
	d := htmlPage{
		Version:          p.cfg.Version,
		ServerTime:       p.cfg.Now().UTC().Format("2006-01-02 15:04 UTC"),
		ShowNames:        p.cfg.ShowNames,
		Empty:            len(t.rows) == 0,
		Files:            len(t.rows),
		UniqueSeeders:    pc.uniqueIPs[1],
		Seeders:          t.seeders,
		UniqueLeechers:   pc.uniqueIPs[0],
		Leechers:         t.leechers,
		CompletedActive:  t.completedActive,
		CompletedAll:     t.completedAll,
		TotalSize:        sizeFormat(t.totalSize),
		TotalTransferred: sizeFormat(t.totalTransferred),
		Page:             v.page,
		Pages:            v.pages,
		V4Seeders:        pc.byRole[1][0],
		V4Leechers:       pc.byRole[0][0],
		V6Seeders:        pc.byRole[1][1],
		V6Leechers:       pc.byRole[0][1],
		WTSeeders:        pc.ws[1],
		WTLeechers:       pc.ws[0],
	}
	order := v.order()
	if v.page > 1 {
		d.First, d.Prev = link(v.sort, order, 1), link(v.sort, order, v.page-1)
	}
	if v.page < v.pages {
		d.Next, d.Last = link(v.sort, order, v.page+1), link(v.sort, order, v.pages)
	}
	header := func(key, label, title string) {
		h := htmlHeader{Label: label, Title: title}
		o := defaultOrder(key)
		if key == v.sort {
			h.Arrow = " ▲"
			if v.desc {
				h.Arrow = " ▼"
			}
			o = "desc"
			if v.desc {
				o = "asc"
			}
		}
		h.Href = link(key, o, 1)
		d.Headers = append(d.Headers, h)
	}
	header(SortInfoHash, "info hash", "SHA1 hash of the info section of the .torrent")
	if p.cfg.ShowNames {
		header(SortName, "torrent name", "")
		header(SortSize, "size", "")
	}
	header(SortComplete, "complete", "seeders")
	header(SortDownloading, "downloading", "leechers")
	header(SortDownloaded, "downloaded", "completed downloads")
	if p.cfg.ShowNames {
		header(SortTransferred, "transferred", "size × downloaded")
	}
	d.Rows = make([]htmlRow, 0, len(v.rows))
	for _, i := range v.rows {
		rw := &t.rows[i]
		hr := htmlRow{
			Hash:        hex.EncodeToString(rw.ih[:]),
			Name:        rw.name,
			Complete:    rw.counts.Complete,
			Downloading: rw.counts.Incomplete,
			Downloaded:  rw.counts.Downloaded,
		}
		if rw.size >= 0 {
			hr.Size = sizeFormat(uint64(rw.size))
			hr.Transferred = sizeFormat(rw.transferred())
			if p.cfg.FileLinks {
				hr.FileLink = "file?info_hash=" + hr.Hash
			}
		}
		d.Rows = append(d.Rows, hr)
	}
	for i, fam := range clientFamilies {
		if n := pc.clients[i]; n > 0 {
			d.Clients = append(d.Clients, htmlCount{fam, n})
		}
	}
	slices.SortStableFunc(d.Clients, func(a, b htmlCount) int { return cmp.Compare(b.N, a.N) })

	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, &d); err != nil {
		http.Error(w, "stats page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// JSON is the document stats.json serves. The counters are those of /metrics (Collector).
type JSON struct {
	Version    string    `json:"version"`
	ServerTime time.Time `json:"server_time"`
	Torrents   int       `json:"torrents"`
	Seeders    int       `json:"seeders"`
	Leechers   int       `json:"leechers"`
	// Completed is every completion known (webswarm_tracker_completed_total).
	Completed uint64 `json:"completed"`
	// Peers by address family, "ipv4" and "ipv6".
	Peers map[string]int `json:"peers"`
	// PeersByRole["seeder"|"leecher"]["ipv4"|"ipv6"] as webswarm_tracker_peers.
	PeersByRole map[string]map[string]int `json:"peers_by_role"`
	// UniqueIPs counts distinct addresses among "seeder"s and "leecher"s (bttrack's totals).
	UniqueIPs map[string]int `json:"unique_ips"`
	// Clients by client family, every family of the bounded set (webswarm_tracker_clients).
	Clients map[string]int `json:"clients"`
	// Page and Rows are present with ?rows=1 (and sort, order, page as on the HTML page).
	Page *JSONPage `json:"page,omitempty"`
	Rows []JSONRow `json:"rows,omitempty"`
}

// JSONPage describes the rows' page.
type JSONPage struct {
	Sort     string `json:"sort"`
	Order    string `json:"order"`
	Page     int    `json:"page"`
	Pages    int    `json:"pages"`
	PageSize int    `json:"page_size"`
	Total    int    `json:"total"`
}

// JSONRow is one torrent.
type JSONRow struct {
	InfoHash    string  `json:"info_hash"`
	Name        string  `json:"name,omitempty"`
	Size        *int64  `json:"size,omitempty"`
	Complete    uint32  `json:"complete"`
	Downloading uint32  `json:"downloading"`
	Downloaded  uint32  `json:"downloaded"`
	Transferred *uint64 `json:"transferred,omitempty"`
}

// ServeJSON serves stats.json; ?rows=1 adds a page of the torrent table (?sort, ?order, ?page).
func (p *Page) ServeJSON(w http.ResponseWriter, r *http.Request) {
	tot := p.cfg.Store.Totals()
	pc := p.peers.get(true)
	j := JSON{
		Version:    p.cfg.Version,
		ServerTime: p.cfg.Now().UTC().Truncate(time.Second),
		Torrents:   tot.Torrents,
		Seeders:    pc.seeders(),
		Leechers:   pc.leechers(),
		Completed:  tot.Downloaded,
		Peers: map[string]int{
			familyV4: pc.byRole[0][0] + pc.byRole[1][0],
			familyV6: pc.byRole[0][1] + pc.byRole[1][1],
			familyWT: pc.ws[0] + pc.ws[1],
		},
		PeersByRole: map[string]map[string]int{
			roleSeed:  {familyV4: pc.byRole[1][0], familyV6: pc.byRole[1][1], familyWT: pc.ws[1]},
			roleLeech: {familyV4: pc.byRole[0][0], familyV6: pc.byRole[0][1], familyWT: pc.ws[0]},
		},
		UniqueIPs: map[string]int{roleSeed: pc.uniqueIPs[1], roleLeech: pc.uniqueIPs[0]},
		Clients:   make(map[string]int, len(clientFamilies)),
	}
	for i, fam := range clientFamilies {
		j.Clients[fam] = pc.clients[i]
	}
	if rows := r.URL.Query().Get("rows"); rows != "" && rows != "0" {
		t := p.tables.get()
		v := p.resolve(r, t)
		j.Page = &JSONPage{Sort: v.sort, Order: v.order(), Page: v.page, Pages: v.pages, PageSize: p.cfg.PageSize, Total: len(t.rows)}
		j.Rows = make([]JSONRow, 0, len(v.rows))
		for _, i := range v.rows {
			rw := &t.rows[i]
			jr := JSONRow{
				InfoHash:    hex.EncodeToString(rw.ih[:]),
				Complete:    rw.counts.Complete,
				Downloading: rw.counts.Incomplete,
				Downloaded:  rw.counts.Downloaded,
			}
			if p.cfg.ShowNames {
				jr.Name = rw.name
				if rw.size >= 0 {
					size, tr := rw.size, rw.transferred()
					jr.Size, jr.Transferred = &size, &tr
				}
			}
			j.Rows = append(j.Rows, jr)
		}
	}
	b, err := json.MarshalIndent(&j, "", "  ")
	if err != nil {
		http.Error(w, "stats.json: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(append(b, '\n'))
}

var pageTemplate = template.Must(template.New("stats").Parse(`<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>BitTorrent download info</title>
<style>
body { font-family: sans-serif; }
table { border-collapse: collapse; }
th, td { border: 1px solid #999; padding: 2px 6px; }
th a { text-decoration: none; }
td.hash { font-family: monospace; }
td.n { text-align: right; }
tr.totals td { font-weight: bold; }
</style>
</head>
<body>
<h3>BitTorrent download info</h3>
<ul>
<li><strong>tracker version:</strong> {{.Version}}</li>
<li><strong>server time:</strong> {{.ServerTime}}</li>
</ul>
{{- if .Empty}}
<p>not tracking any files yet...</p>
{{- else}}
<table summary="files" border="1">
<tr>{{range .Headers}}<th{{if .Title}} title="{{.Title}}"{{end}}><a href="{{.Href}}">{{.Label}}</a>{{.Arrow}}</th>{{end}}</tr>
{{- $names := .ShowNames}}
{{- range .Rows}}
<tr><td class="hash"><code>{{.Hash}}</code></td>{{if $names}}<td>{{if .FileLink}}<a href="{{.FileLink}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td><td class="n">{{.Size}}</td>{{end}}<td class="n">{{.Complete}}</td><td class="n">{{.Downloading}}</td><td class="n">{{.Downloaded}}</td>{{if $names}}<td class="n">{{.Transferred}}</td>{{end}}</tr>
{{- end}}
<tr class="totals"><td class="n"{{if .ShowNames}} colspan="2"{{end}}>{{.Files}} files</td>{{if .ShowNames}}<td class="n">{{.TotalSize}}</td>{{end}}<td class="n">{{.UniqueSeeders}}/{{.Seeders}}</td><td class="n">{{.UniqueLeechers}}/{{.Leechers}}</td><td class="n">{{.CompletedActive}}/{{.CompletedAll}}</td>{{if .ShowNames}}<td class="n">{{.TotalTransferred}}</td>{{end}}</tr>
</table>
<p class="pager">page {{.Page}} of {{.Pages}}
{{- if .First}} · <a href="{{.First}}">first</a> · <a href="{{.Prev}}">previous</a>{{end}}
{{- if .Next}} · <a href="{{.Next}}">next</a> · <a href="{{.Last}}">last</a>{{end}}</p>
<ul>
<li><em>info hash:</em> SHA1 hash of the "info" section of the metainfo (*.torrent)</li>
<li><em>complete:</em> number of connected clients with the complete file (total: unique IPs/total connections)</li>
<li><em>downloading:</em> number of connected clients still downloading (total: unique IPs/total connections)</li>
<li><em>downloaded:</em> reported complete downloads (total: current/all; current counts torrents that have peers now)</li>
{{- if .ShowNames}}
<li><em>transferred:</em> torrent size * total downloaded (does not include partial transfers)</li>
{{- end}}
</ul>
{{- end}}
<h4>peers by address family</h4>
<table summary="peers by address family">
<tr><th></th><th>seeders</th><th>leechers</th></tr>
<tr><td>IPv4</td><td class="n">{{.V4Seeders}}</td><td class="n">{{.V4Leechers}}</td></tr>
<tr><td>IPv6</td><td class="n">{{.V6Seeders}}</td><td class="n">{{.V6Leechers}}</td></tr>
<tr><td>WebTorrent (browsers, WebSocket)</td><td class="n">{{.WTSeeders}}</td><td class="n">{{.WTLeechers}}</td></tr>
</table>
<h4>peers by client</h4>
<table summary="peers by client">
<tr><th>client</th><th>peers</th></tr>
{{- range .Clients}}
<tr><td>{{.Label}}</td><td class="n">{{.N}}</td></tr>
{{- end}}
</table>
<p><a href="stats.json">stats.json</a> (the same figures as /metrics; add <a href="stats.json?rows=1">?rows=1</a> for the table)</p>
</body>
</html>
`))
