package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/webswarm/webswarm/tracker/swarm/redisstore"
)

// errVersion is what parseFlags returns for --version: print the version and exit 0.
var errVersion = errors.New("version requested")

// options are the command line, with bttrack 3.4.2's flag names and defaults (Go's flag
// package accepts both -flag and --flag, as bttrack did).
type options struct {
	port                int
	bind                string
	udpPort             int
	udpBind             string
	dfile               string
	socketTimeout       int
	saveDfileInterval   int
	timeoutDownloaders  int
	reannounceInterval  int
	minInterval         int
	responseSize        int
	maxGive             int
	natCheck            int
	allowedDir          string
	parseAllowedMinutes int
	showNames           int
	favicon             string
	onlyLocalOverrideIP int
	logfile             string
	allowGet            int
	keepDead            int
	fcgi                string
	fcgiSocketMode      string
	fcgiSocketGroup     string
	trustedProxies      string
	prefix              string
	scrape              string
	maxPeers            int
	maxTorrents         int
	metricsPath         string
	maxAnnounceRate     float64
	logLevel            string
	natCheckMode        string
	natCheckTimeout     int
	natCheckQueue       int
	natCheckPerIP       int
	rateIPv4Prefix      int
	rateIPv6Prefix      int
	rateTableSize       int
	fcgiMaxParams       int
	fcgiMaxConns        int
	maxConns            int
	peerIDs             int
	maxTotalPeers       int
	maxPeersPerIP       int
	maxFullScrape       int
	store               string
	storePrefix         string
	storeTimeoutMS      int
	importDfile         string
	dfileSet            bool // --dfile was given (its default is ignored with a Redis store)
	websocket           int
	wsInterval          int
	wsMaxOffers         int
	wsMaxMessage        int
	wsOfferTTL          int
	wsIdleTimeout       int
	wsPingInterval      int
	wsMaxConns          int
	wsMaxConnsPerIP     int
	wsMaxBadMessages    int
	wsMaxPendingOffers  int
	wsMaxSwarms         int
	wsRelayQueue        int
	wsRelayPending      int

	trusted  []netip.Prefix
	sockMode uint32
}

const usageHead = `tracker — a BitTorrent tracker (successor of mainline bttrack 3.4.2) that runs behind
Apache httpd or nginx: HTTP and FastCGI announce/scrape, UDP (BEP 15), stats page, Prometheus.

Usage: tracker [--flag value]...   (-flag and --flag are the same)
       tracker --version

Routes: /announce /scrape /  /stats  /stats.json  /healthz  /metrics  /favicon.ico  /file
Signals: SIGTERM/SIGINT save the state file and exit; SIGHUP reopens the log file and rescans
--allowed_dir.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("tracker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		printFlags(stderr, fs)
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.IntVar(&o.port, "port", 6969, "port to listen on for HTTP (and UDP, see --udp_port)")
	fs.StringVar(&o.bind, "bind", "", "address to bind to (default: all addresses)")
	fs.IntVar(&o.udpPort, "udp_port", -1, "UDP (BEP 15) port; -1 = same as --port, 0 = no UDP")
	fs.StringVar(&o.udpBind, "udp_bind", "-", "address for UDP; - = same as --bind, \"\" = all (behind a web server: --bind 127.0.0.1 --udp_bind \"\")")
	fs.StringVar(&o.dfile, "dfile", "tracker-state.bencode", "state file (bttrack's bencoded layout), written atomically")
	fs.IntVar(&o.socketTimeout, "socket_timeout", 15, "seconds before an idle or slow HTTP connection is closed")
	fs.IntVar(&o.saveDfileInterval, "save_dfile_interval", 300, "seconds between saves of the state file")
	fs.IntVar(&o.timeoutDownloaders, "timeout_downloaders_interval", 2700, "seconds after which a peer that stopped announcing is dropped")
	fs.IntVar(&o.reannounceInterval, "reannounce_interval", 1800, "seconds clients should wait between announces (interval)")
	fs.IntVar(&o.minInterval, "min_interval", 0, "seconds clients must wait between announces (min interval; 0 = half of --reannounce_interval)")
	fs.IntVar(&o.responseSize, "response_size", 50, "peers given to a client that sends no numwant")
	fs.IntVar(&o.maxGive, "max_give", 200, "most peers given in one reply (numwant is clamped to it)")
	fs.IntVar(&o.natCheck, "nat_check", 3, "times to try connecting back to a new peer before giving up on it (0 = no NAT check)")
	fs.StringVar(&o.allowedDir, "allowed_dir", "", "only serve torrents whose .torrent file is in this directory tree")
	fs.IntVar(&o.parseAllowedMinutes, "parse_allowed_interval", 15, "minutes between rescans of --allowed_dir")
	fs.IntVar(&o.showNames, "show_names", 1, "show torrent names on the stats page (needs --allowed_dir)")
	fs.StringVar(&o.favicon, "favicon", "", "file served as /favicon.ico")
	fs.IntVar(&o.onlyLocalOverrideIP, "only_local_override_ip", 1, "honour the ip= parameter: 0 = always, 1 = only from local-network clients, 2 = only when NAT checking")
	fs.StringVar(&o.logfile, "logfile", "-", "access log (combined format) file; - = standard output, \"\" = none")
	fs.IntVar(&o.allowGet, "allow_get", 0, "serve .torrent files from --allowed_dir at /file?info_hash=")
	fs.IntVar(&o.keepDead, "keep_dead", 0, "keep torrents that have no peers left")
	fs.StringVar(&o.fcgi, "fcgi", "", "also serve FastCGI on ADDR (host:port) or unix:PATH")
	fs.StringVar(&o.fcgiSocketMode, "fcgi_socket_mode", "0660", "permissions of the FastCGI unix socket (octal; the web server's user needs --fcgi_socket_group or 0666)")
	fs.StringVar(&o.fcgiSocketGroup, "fcgi_socket_group", "", "group of the FastCGI unix socket (e.g. www-data, with mode 0660)")
	fs.StringVar(&o.trustedProxies, "trusted_proxies", "127.0.0.0/8,::1", "comma-separated addresses/CIDRs whose X-Real-IP/X-Forwarded-For are believed")
	fs.StringVar(&o.prefix, "prefix", "", "path prefix of a sub-path mount, e.g. /tracker (default: the proxy's X-Forwarded-Prefix)")
	fs.StringVar(&o.scrape, "scrape", "full", "scrape: full (also without info_hash), specific (only named torrents) or off")
	fs.IntVar(&o.maxPeers, "max_peers", 100_000, "most peers per torrent and address family (0 = no limit)")
	fs.IntVar(&o.maxTorrents, "max_torrents", 100_000, "most torrents (0 = no limit)")
	fs.IntVar(&o.maxTotalPeers, "max_total_peers", 2_000_000, "most peers of all torrents together, the tracker's main memory bound (0 = no limit)")
	fs.IntVar(&o.maxPeersPerIP, "max_peers_per_ip", 20_000, "most peers (so torrents too) registered from one IPv4 address or IPv6 /64, over all torrents (0 = no limit)")
	fs.StringVar(&o.store, "store", "memory", "peer store: memory (this process), or a Redis shared by several trackers: redis://[user:pass@]host:port[/db], rediss://… (TLS), unix:///path/redis.sock, redis-cluster://h1:p1,h2:p2 (seed nodes)")
	fs.StringVar(&o.storePrefix, "store_prefix", "webswarm:", "prefix of every Redis key (trackers sharing a Redis share the swarms of one prefix)")
	fs.IntVar(&o.storeTimeoutMS, "store_timeout_ms", 250, "milliseconds an announce may wait on the Redis store before it fails (a failure reason, retried by the client)")
	fs.StringVar(&o.importDfile, "import_dfile", "", "with a Redis --store: load this state file (--dfile of a tracker with the memory store, or bttrack's) into the store before serving; importing the same file again changes nothing")
	fs.IntVar(&o.maxFullScrape, "max_full_scrape", 10_000, "full scrape (no info_hash) only while the tracker has at most this many torrents (0 = no limit)")
	fs.StringVar(&o.metricsPath, "metrics_path", "/metrics", "path of the Prometheus metrics")
	fs.Float64Var(&o.maxAnnounceRate, "max_announce_rate", 0, "announces per second allowed per source (an IPv4 address, an IPv6 /64: see --rate_ipv4_prefix, --rate_ipv6_prefix), bursts of 10× (0 = no limit)")
	fs.StringVar(&o.logLevel, "log_level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.natCheckMode, "nat_check_mode", "connect", "NAT check: connect (a TCP connect, closed at once) or handshake (bttrack's BitTorrent handshake, which makes libtorrent clients with one connection per IP drop a seeder on the tracker's host)")
	fs.IntVar(&o.natCheckTimeout, "nat_check_timeout", 5, "seconds one NAT check may take")
	fs.IntVar(&o.natCheckQueue, "nat_check_queue", 10000, "most new peers waiting for a NAT check; beyond it new peers are handed out unchecked")
	fs.IntVar(&o.natCheckPerIP, "nat_check_per_ip", 8, "most NAT checks pending per source (IPv4 address, IPv6 /64); beyond it its new peers are handed out unchecked")
	fs.IntVar(&o.rateIPv4Prefix, "rate_ipv4_prefix", 32, "--max_announce_rate counts IPv4 clients by this prefix length (32 = per address)")
	fs.IntVar(&o.rateIPv6Prefix, "rate_ipv6_prefix", 64, "--max_announce_rate counts IPv6 clients by this prefix length (64 = per /64, what one host is given)")
	fs.IntVar(&o.rateTableSize, "rate_table_size", 1000000, "most sources --max_announce_rate tracks; when full, only sources not being limited are forgotten")
	fs.IntVar(&o.fcgiMaxParams, "fcgi_max_params", 64<<10, "bytes of FastCGI PARAMS (the request's headers and query) a connection may have in flight; more closes it")
	fs.IntVar(&o.fcgiMaxConns, "fcgi_max_connections", 512, "FastCGI connections open at once; one more closes the connection idle longest (0 = no limit)")
	fs.IntVar(&o.maxConns, "max_connections", -1, "HTTP connections open at once; one more closes the one waiting longest for a request (-1 = the file descriptor limit less an eighth and --fcgi_max_connections; 0 = no limit)")
	fs.IntVar(&o.peerIDs, "peer_ids", 0, "1 = give peer IDs in compact=0 replies (unless no_peer_id=1), for very old clients; 0 = never hand them out")
	fs.IntVar(&o.websocket, "websocket", 1, "1 = serve WebSocket (WebTorrent) announces on /announce over HTTP; 0 = answer them 400")
	fs.IntVar(&o.wsInterval, "ws_interval", 120, "seconds WebSocket clients should wait between announces")
	fs.IntVar(&o.wsMaxOffers, "ws_max_offers", 10, "most WebRTC offers in one WebSocket announce; more refuse the message")
	fs.IntVar(&o.wsMaxMessage, "ws_max_message", 64<<10, "bytes of one WebSocket message; a larger one closes the connection")
	fs.IntVar(&o.wsOfferTTL, "ws_offer_ttl", 120, "seconds a relayed offer waits for its answer")
	fs.IntVar(&o.wsIdleTimeout, "ws_idle_timeout", 180, "seconds a WebSocket connection may send nothing (not even a pong) before it is closed")
	fs.IntVar(&o.wsPingInterval, "ws_ping_interval", 30, "seconds between pings to each WebSocket connection; keep it below the proxy's read timeout (nginx proxy_read_timeout, Apache ProxyTimeout)")
	fs.IntVar(&o.wsMaxConns, "ws_max_connections", -1, "WebSocket connections open at once (-1 = half of --max_connections, which they also count against; 0 = no limit)")
	fs.IntVar(&o.wsMaxConnsPerIP, "ws_max_connections_per_ip", 32, "WebSocket connections from one IPv4 address or IPv6 /64 (0 = no limit)")
	fs.IntVar(&o.wsMaxBadMessages, "ws_max_bad_messages", 5, "malformed WebSocket messages (each answered with a failure reason) before the connection is closed")
	fs.IntVar(&o.wsMaxPendingOffers, "ws_max_pending_offers", 100, "offers of one WebSocket connection waiting for an answer; more are not relayed")
	fs.IntVar(&o.wsMaxSwarms, "ws_max_swarms", 100, "torrents one WebSocket connection may announce at once")
	fs.IntVar(&o.wsRelayQueue, "ws_relay_queue", 4096, "with a Redis --store: WebSocket messages for other tracker instances waiting for Redis; more are dropped")
	fs.IntVar(&o.wsRelayPending, "ws_relay_pending", 10000, "with a Redis --store: offers from other tracker instances waiting here for their answer; more are dropped")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *showVersion {
		return nil, errVersion
	}
	fs.Visit(func(f *flag.Flag) { o.dfileSet = o.dfileSet || f.Name == "dfile" })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags are --name value)", fs.Arg(0))
	}
	return o, o.validate()
}

// printFlags lists the flags as flag.PrintDefaults does, but spelled --name, the spelling
// the documentation and bttrack use (the flag package accepts -name and --name alike).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		switch f.DefValue {
		case "", "0", "false":
		default:
			if name == "string" {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				line += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		fmt.Fprintln(w, line)
	})
}

func (o *options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.port < 1 || o.port > 65535 {
		bad("--port %d: want 1-65535", o.port)
	}
	if o.udpPort < -1 || o.udpPort > 65535 {
		bad("--udp_port %d: want -1, 0 or a port", o.udpPort)
	}
	if o.udpPort == -1 {
		o.udpPort = o.port
	}
	if o.bind != "" {
		if _, err := netip.ParseAddr(o.bind); err != nil {
			bad("--bind %q: not an IP address", o.bind)
		}
	}
	if o.udpBind == "-" {
		o.udpBind = o.bind
	} else if o.udpBind != "" {
		if _, err := netip.ParseAddr(o.udpBind); err != nil {
			bad("--udp_bind %q: not an IP address", o.udpBind)
		}
	}
	positive := map[string]int{
		"--socket_timeout": o.socketTimeout, "--save_dfile_interval": o.saveDfileInterval,
		"--timeout_downloaders_interval": o.timeoutDownloaders, "--reannounce_interval": o.reannounceInterval,
		"--parse_allowed_interval": o.parseAllowedMinutes,
		"--nat_check_timeout":      o.natCheckTimeout, "--nat_check_queue": o.natCheckQueue,
		"--nat_check_per_ip": o.natCheckPerIP, "--rate_table_size": o.rateTableSize,
	}
	for name, v := range positive {
		if v <= 0 {
			bad("%s %d: must be positive", name, v)
		}
	}
	if time.Duration(o.timeoutDownloaders)*time.Second > 18*time.Hour {
		bad("--timeout_downloaders_interval %d: at most 64800 (18 h)", o.timeoutDownloaders)
	}
	if o.minInterval < 0 || o.minInterval > o.reannounceInterval {
		bad("--min_interval %d: want 0..--reannounce_interval (%d)", o.minInterval, o.reannounceInterval)
	}
	if o.responseSize < 0 || o.maxGive < 0 || o.natCheck < 0 || o.maxPeers < 0 || o.maxTorrents < 0 || o.maxAnnounceRate < 0 {
		bad("--response_size, --max_give, --nat_check, --max_peers, --max_torrents and --max_announce_rate must not be negative")
	}
	for name, v := range map[string]int{"--max_total_peers": o.maxTotalPeers, "--max_peers_per_ip": o.maxPeersPerIP, "--max_full_scrape": o.maxFullScrape} {
		if v < 0 {
			bad("%s %d: must not be negative (0 = no limit)", name, v)
		}
	}
	for name, v := range map[string]int{"--show_names": o.showNames, "--allow_get": o.allowGet, "--keep_dead": o.keepDead, "--peer_ids": o.peerIDs} {
		if v != 0 && v != 1 {
			bad("%s %d: want 0 or 1", name, v)
		}
	}
	if o.onlyLocalOverrideIP < 0 || o.onlyLocalOverrideIP > 2 {
		bad("--only_local_override_ip %d: want 0, 1 or 2", o.onlyLocalOverrideIP)
	}
	if o.store != "memory" {
		if err := redisstore.CheckURL(o.store); err != nil {
			bad("--store: %v (want memory or a redis://, rediss://, unix:// or redis-cluster:// URL)", err)
		}
		if o.storePrefix == "" {
			bad("--store_prefix must not be empty with a Redis store")
		}
		if o.dfileSet {
			bad("--dfile is not used with a shared --store: the swarms live in Redis, whose persistence (RDB, AOF) is the Redis admin's choice; load an existing state file once with --import_dfile")
		}
	} else if o.importDfile != "" {
		bad("--import_dfile loads a state file into a shared --store; with --store memory the state file is --dfile")
	}
	if o.storeTimeoutMS < 1 || o.storeTimeoutMS > 60_000 {
		bad("--store_timeout_ms %d: want 1..60000", o.storeTimeoutMS)
	}
	if o.allowGet == 1 && o.allowedDir == "" {
		bad("--allow_get 1 needs --allowed_dir")
	}
	switch o.scrape {
	case "full", "specific", "off":
	default:
		bad("--scrape %q: want full, specific or off", o.scrape)
	}
	if !strings.HasPrefix(o.metricsPath, "/") || o.metricsPath == "/" {
		bad("--metrics_path %q: want a path like /metrics", o.metricsPath)
	}
	if o.prefix != "" && !strings.HasPrefix(o.prefix, "/") {
		bad("--prefix %q: must start with /", o.prefix)
	}
	mode, err := strconv.ParseUint(o.fcgiSocketMode, 8, 32)
	if err != nil || mode > 0o777 {
		bad("--fcgi_socket_mode %q: want octal permissions like 0660", o.fcgiSocketMode)
	}
	o.sockMode = uint32(mode)
	if o.fcgiMaxParams < 4<<10 || o.fcgiMaxParams > 16<<20 {
		bad("--fcgi_max_params %d: want 4096 to 16777216 bytes", o.fcgiMaxParams)
	}
	if o.fcgiMaxConns < 0 {
		bad("--fcgi_max_connections %d: must not be negative", o.fcgiMaxConns)
	}
	if o.maxConns < -1 {
		bad("--max_connections %d: want -1 (from the file descriptor limit), 0 (no limit) or a count", o.maxConns)
	}
	if o.websocket != 0 && o.websocket != 1 {
		bad("--websocket %d: want 0 or 1", o.websocket)
	}
	for name, v := range map[string]int{"--ws_interval": o.wsInterval, "--ws_max_offers": o.wsMaxOffers,
		"--ws_offer_ttl": o.wsOfferTTL, "--ws_idle_timeout": o.wsIdleTimeout, "--ws_ping_interval": o.wsPingInterval,
		"--ws_max_bad_messages": o.wsMaxBadMessages, "--ws_max_pending_offers": o.wsMaxPendingOffers, "--ws_max_swarms": o.wsMaxSwarms,
		"--ws_relay_queue": o.wsRelayQueue, "--ws_relay_pending": o.wsRelayPending} {
		if v <= 0 {
			bad("%s %d: must be positive", name, v)
		}
	}
	if o.wsPingInterval >= o.wsIdleTimeout {
		bad("--ws_ping_interval %d: must be below --ws_idle_timeout %d, or live peers are closed as idle", o.wsPingInterval, o.wsIdleTimeout)
	}
	if o.wsMaxMessage < 1024 || o.wsMaxMessage > 16<<20 {
		bad("--ws_max_message %d: want 1024 to 16777216 bytes", o.wsMaxMessage)
	}
	if o.wsMaxConns < -1 {
		bad("--ws_max_connections %d: want -1 (half of --max_connections), 0 (no limit) or a count", o.wsMaxConns)
	}
	if o.wsMaxConnsPerIP < 0 {
		bad("--ws_max_connections_per_ip %d: must not be negative (0 = no limit)", o.wsMaxConnsPerIP)
	}
	if o.fcgi != "" && !strings.HasPrefix(o.fcgi, "unix:") {
		if _, err := netip.ParseAddrPort(o.fcgi); err != nil {
			bad("--fcgi %q: want host:port (an IP address) or unix:PATH", o.fcgi)
		}
	}
	o.trusted = nil
	for _, s := range strings.Split(o.trustedProxies, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				bad("--trusted_proxies: %q is not an address or CIDR", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		o.trusted = append(o.trusted, p.Masked())
	}
	switch o.natCheckMode {
	case "connect", "handshake":
	default:
		bad("--nat_check_mode %q: want connect or handshake", o.natCheckMode)
	}
	if o.rateIPv4Prefix < 1 || o.rateIPv4Prefix > 32 {
		bad("--rate_ipv4_prefix %d: want 1-32", o.rateIPv4Prefix)
	}
	if o.rateIPv6Prefix < 1 || o.rateIPv6Prefix > 128 {
		bad("--rate_ipv6_prefix %d: want 1-128", o.rateIPv6Prefix)
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log_level %q: want debug, info, warn or error", o.logLevel)
	}
	return errors.Join(errs...)
}

// warnings lists settings that work but that public tracker lists reject or clients ignore.
func (o *options) warnings() []string {
	var w []string
	if o.reannounceInterval < 300 || o.reannounceInterval > 3*3600 {
		w = append(w, fmt.Sprintf("--reannounce_interval %d s is outside 5 min–3 h: public tracker lists reject such trackers and libtorrent ignores intervals under 300 s", o.reannounceInterval))
	}
	if o.minInterval != 0 && (o.minInterval < 300 || o.minInterval > 3*3600) {
		w = append(w, fmt.Sprintf("--min_interval %d s is outside 5 min–3 h: aria2 re-announces every min interval", o.minInterval))
	}
	if o.timeoutDownloaders < o.reannounceInterval {
		w = append(w, fmt.Sprintf("--timeout_downloaders_interval %d is shorter than --reannounce_interval %d: peers expire between their announces", o.timeoutDownloaders, o.reannounceInterval))
	}
	return w
}
