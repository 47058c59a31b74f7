// Package stats is the tracker's stats page, as mainline bttrack's ("BitTorrent download info":
// tracker version, server time, a table of torrents with complete, downloading, downloaded and
// transferred, a totals row and a legend), plus what admins of big trackers ask for: paging
// and sorting over 100,000 torrents, peers by client family and by IPv4/IPv6, and stats.json
// with the same counters as /metrics. It never shows a peer's address.
//
// The page is mounted under a sub-path behind Apache or nginx (/tracker/), so every link it
// emits is relative: "stats.json", "?sort=complete&order=desc&page=2".
//
// Figures come from snapshots: the torrent table is rebuilt at most once a second (and each
// sort order computed once per snapshot), the per-peer figures that need a Walk over every
// peer (client families, unique IPs, roles by address family) at most every few seconds.
// Collector exports the same figures to Prometheus, read at scrape time.
package stats
