package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestFlagDefaultsAreBttracks(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]int{
		"port": o.port, "socket_timeout": o.socketTimeout, "save_dfile_interval": o.saveDfileInterval,
		"timeout_downloaders_interval": o.timeoutDownloaders, "reannounce_interval": o.reannounceInterval,
		"response_size": o.responseSize, "max_give": o.maxGive, "nat_check": o.natCheck,
		"parse_allowed_interval": o.parseAllowedMinutes, "show_names": o.showNames,
		"only_local_override_ip": o.onlyLocalOverrideIP, "allow_get": o.allowGet, "keep_dead": o.keepDead,
		"udp_port": o.udpPort,
	} {
		want := map[string]int{"port": 6969, "socket_timeout": 15, "save_dfile_interval": 300,
			"timeout_downloaders_interval": 2700, "reannounce_interval": 1800, "response_size": 50,
			"max_give": 200, "nat_check": 3, "parse_allowed_interval": 15, "show_names": 1,
			"only_local_override_ip": 1, "allow_get": 0, "keep_dead": 0, "udp_port": 6969}[name]
		if got != want {
			t.Errorf("--%s default %d, want %d", name, got, want)
		}
	}
	if o.dfile != "tracker-state.bencode" || o.logfile != "-" || o.scrape != "full" || o.metricsPath != "/metrics" {
		t.Errorf("string defaults: %+v", o)
	}
	if len(o.trusted) != 2 || !o.trusted[0].Contains(netip.MustParseAddr("127.9.9.9")) || !o.trusted[1].Contains(netip.IPv6Loopback()) {
		t.Errorf("trusted proxies %v", o.trusted)
	}
	if len(o.warnings()) != 0 {
		t.Errorf("defaults warn: %v", o.warnings())
	}
}

func TestFlagSpellingsAndErrors(t *testing.T) {
	o, err := parseFlags([]string{"-port", "7000", "--bind=127.0.0.1", "--udp_bind", "", "--trusted_proxies", "10.0.0.1, 192.168.0.0/16"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != 7000 || o.udpPort != 7000 || o.bind != "127.0.0.1" || o.udpBind != "" || len(o.trusted) != 2 {
		t.Errorf("parsed %+v", o)
	}
	if o2, _ := parseFlags([]string{"--bind", "127.0.0.1"}, io.Discard); o2.udpBind != "127.0.0.1" {
		t.Errorf("--udp_bind does not follow --bind: %q", o2.udpBind)
	}
	// Several mistakes are reported together, each naming its flag.
	_, err = parseFlags([]string{"--port", "0", "--scrape", "x", "--keep_dead", "2"}, io.Discard)
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{"--port 0", "--scrape", "--keep_dead"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	o, err = parseFlags([]string{"--reannounce_interval", "60"}, io.Discard)
	if err != nil || len(o.warnings()) == 0 {
		t.Errorf("a 60 s interval gives no warning (%v)", err)
	}
}

func TestNATCheckAndRateLimitFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.natCheckMode != "connect" || o.natCheckTimeout != 5 || o.natCheckQueue != 10000 || o.natCheckPerIP != 8 ||
		o.rateIPv4Prefix != 32 || o.rateIPv6Prefix != 64 || o.rateTableSize != 1000000 {
		t.Errorf("defaults: %+v", o)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--nat_check_mode", "syn"}},
		{[]string{"--nat_check_timeout", "0"}},
		{[]string{"--nat_check_queue", "-1"}},
		{[]string{"--nat_check_per_ip", "0"}},
		{[]string{"--rate_ipv4_prefix", "33"}},
		{[]string{"--rate_ipv6_prefix", "0"}},
		{[]string{"--rate_table_size", "0"}},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.args[0]+" ") {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.args[0])
		}
	}
}

// TestHardeningFlags: the memory limits are on by default, and a bad value of any of them,
// or of --peer_ids, stops start-up naming the flag.
func TestHardeningFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.maxTorrents != 100_000 || o.maxPeers != 100_000 || o.maxTotalPeers != 2_000_000 || o.maxPeersPerIP != 20_000 ||
		o.maxFullScrape != 10_000 || o.peerIDs != 0 {
		t.Errorf("limit defaults: torrents %d, peers %d, total %d, per IP %d, full scrape %d, peer ids %d",
			o.maxTorrents, o.maxPeers, o.maxTotalPeers, o.maxPeersPerIP, o.maxFullScrape, o.peerIDs)
	}
	for _, args := range [][]string{
		{"--max_total_peers", "-1"}, {"--max_peers_per_ip", "-5"}, {"--max_full_scrape", "-1"}, {"--peer_ids", "2"},
		{"--websocket", "2"}, {"--ws_max_offers", "0"}, {"--ws_max_message", "10"}, {"--ws_max_connections", "-2"},
		{"--ws_max_connections_per_ip", "-1"}, {"--ws_ping_interval", "180"}, {"--ws_idle_timeout", "0"},
		{"--ws_relay_queue", "0"}, {"--ws_relay_pending", "-1"},
	} {
		_, err := parseFlags(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err %v, want one naming %s", args, err, args[0])
		}
	}
}
