package e2e

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// The tracker program itself: flags, signals, the state file across restarts and crashes,
// the allowed directory, the FastCGI socket's permissions.

func tpRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := testenv.Build(t, "./tracker")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run tracker %v: %v", args, err)
	}
	return string(out), code
}

func TestTrackerBadFlagsStopStartup(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "0"}, "--port 0"},
		{[]string{"--scrape", "sometimes"}, "--scrape"},
		{[]string{"--trusted_proxies", "10.0.0.0/8,nonsense"}, "--trusted_proxies"},
		{[]string{"--fcgi_socket_mode", "999"}, "--fcgi_socket_mode"},
		{[]string{"--fcgi", "localhost"}, "--fcgi"},
		{[]string{"--min_interval", "5000"}, "--min_interval"},
		{[]string{"--allow_get", "1"}, "--allow_get 1 needs --allowed_dir"},
		{[]string{"--only_local_override_ip", "3"}, "--only_local_override_ip"},
		{[]string{"--timeout_downloaders_interval", "100000"}, "--timeout_downloaders_interval"},
		{[]string{"--no_such_flag"}, "no_such_flag"},
		{[]string{"--udp_bind", "somewhere"}, "--udp_bind"},
		{[]string{"-port", "x"}, "-port"},
		{[]string{"--allowed_dir", "/nonexistent/dir", "--port", "1"}, "--allowed_dir"},
		{[]string{"--favicon", "/nonexistent/favicon.ico", "--port", "1"}, "--favicon"},
	} {
		out, code := tpRun(t, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("tracker %v: exit %d, output %q; want a failure naming %q", tc.args, code, testenv.Tail([]byte(out), 300), tc.want)
		}
	}
}

func TestTrackerHelpListsEveryFlag(t *testing.T) {
	out, code := tpRun(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, f := range []string{"port", "bind", "dfile", "socket_timeout", "save_dfile_interval",
		"timeout_downloaders_interval", "reannounce_interval", "response_size", "max_give", "nat_check",
		"allowed_dir", "parse_allowed_interval", "show_names", "favicon", "only_local_override_ip", "logfile",
		"allow_get", "keep_dead", "min_interval", "fcgi", "fcgi_socket_mode", "fcgi_socket_group",
		"trusted_proxies", "prefix", "scrape", "max_peers", "max_torrents", "metrics_path", "max_announce_rate",
		"udp_port", "udp_bind", "nat_check_mode", "nat_check_timeout", "nat_check_queue", "nat_check_per_ip",
		"rate_ipv4_prefix", "rate_ipv6_prefix", "rate_table_size", "fcgi_max_params", "fcgi_max_connections",
		"max_connections", "peer_ids", "max_total_peers", "max_peers_per_ip", "max_full_scrape", "store", "store_prefix", "store_timeout_ms", "import_dfile",
		"websocket", "ws_interval", "ws_max_offers", "ws_max_message", "ws_offer_ttl", "ws_idle_timeout",
		"ws_ping_interval", "ws_max_connections", "ws_max_connections_per_ip", "ws_max_bad_messages",
		"ws_max_pending_offers", "ws_max_swarms"} {
		if !strings.Contains(out, "-"+f+" ") && !strings.Contains(out, "-"+f+"\n") {
			t.Errorf("--help does not document --%s", f)
		}
	}
}

func tpHash(s string) [20]byte { return sha1.Sum([]byte(s)) }

func TestTrackerStateSurvivesSIGTERM(t *testing.T) {
	tr := startTracker(t)
	ih := tpHash("sigterm")
	if _, err := announce(tr.Announce, announceQuery(ih, "-TR3000-aaaaaaaaaaaa", 7001, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := announce(tr.Announce, announceQuery(ih, "-TR3000-bbbbbbbbbbbb", 7002, 5, "event=started")); err != nil {
		t.Fatal(err)
	}
	if _, err := announce(tr.Announce, announceQuery(ih, "-TR3000-bbbbbbbbbbbb", 7002, 0, "event=completed")); err != nil {
		t.Fatal(err)
	}
	tr.Proc.Signal(syscall.SIGTERM)
	select {
	case <-tr.Proc.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("tracker did not exit on SIGTERM")
	}
	if done, err := tr.Proc.Exited(); !done || err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	tr2 := startTracker(t, "--dfile", tr.Dfile)
	st, err := scrape(tr2.Base+"/scrape", ih)
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete != 2 || st.Downloaded != 1 {
		t.Fatalf("after restart: %+v, want 2 seeders and 1 completion", st)
	}
	// The restored completion is not counted again.
	if _, err := announce(tr2.Announce, announceQuery(ih, "-TR3000-bbbbbbbbbbbb", 7002, 0, "event=completed")); err != nil {
		t.Fatal(err)
	}
	if st, _ = scrape(tr2.Base+"/scrape", ih); st.Downloaded != 1 {
		t.Fatalf("completion counted twice across a restart: %+v", st)
	}
}

func TestTrackerKill9LosesAtMostOneInterval(t *testing.T) {
	tr := startTracker(t, "--save_dfile_interval", "1")
	ih := tpHash("kill-9")
	peer := "-TR3000-kill9kill9ki"
	if _, err := announce(tr.Announce, announceQuery(ih, peer, 7001, 3)); err != nil {
		t.Fatal(err)
	}
	// Within one interval a save holds the peer; then the crash.
	testenv.WaitFor(t, 10*time.Second, "a state save with the peer", func() error {
		b, err := os.ReadFile(tr.Dfile)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(peer)) {
			return fmt.Errorf("state file has no peer yet")
		}
		return nil
	})
	tr.Proc.Kill()
	tr2 := startTracker(t, "--dfile", tr.Dfile)
	st, err := scrape(tr2.Base+"/scrape", ih)
	if err != nil {
		t.Fatal(err)
	}
	if st.Incomplete != 1 {
		t.Fatalf("after kill -9: %+v, want the leecher saved before the crash", st)
	}
}

func TestTrackerCorruptStateMovedAside(t *testing.T) {
	dir := t.TempDir()
	dfile := filepath.Join(dir, "state.bencode")
	if err := os.WriteFile(dfile, []byte("d5:peersd20:this is not bencode"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTracker(t, "--dfile", dfile)
	aside, _ := filepath.Glob(dfile + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt state file not moved aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "d5:peersd20:this is not bencode" {
		t.Fatalf("moved-aside file changed: %q", b)
	}
	body, err := trackerGet(tr.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("webswarm_tracker_state_load_failures_total 1")) {
		t.Error("load failure not counted in /metrics")
	}
	if !strings.Contains(tr.Proc.Output(), "STATE FILE NOT LOADED") {
		t.Error("no loud error in the log")
	}
	if _, err := announce(tr.Announce, announceQuery(tpHash("x"), "-TR3000-aaaaaaaaaaaa", 7001, 0)); err != nil {
		t.Fatalf("tracker not serving after a corrupt state file: %v", err)
	}
}

func TestTrackerAllowedDirAndSIGHUP(t *testing.T) {
	testenv.Require(t, "mktorrent", "mktorrent")
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	os.Mkdir(allowed, 0o755)
	logfile := filepath.Join(dir, "access.log")
	tr := startTracker(t, "--allowed_dir", allowed, "--allow_get", "1", "--logfile", logfile)

	payload := filepath.Join(dir, "big.iso")
	writePayload(t, dir, "big.iso", 100_000)
	tf := makeTorrent(t, payload, tr.Announce)
	ti := readTorrent(t, tf)
	q := announceQuery(ti.InfoHash, "-TR3000-aaaaaaaaaaaa", 7001, 0)
	r, err := announce(tr.Announce, q)
	if err == nil || !strings.Contains(r.FailureReason, "not authorized") {
		t.Fatalf("announce of an unlisted torrent: %v", err)
	}
	data, _ := os.ReadFile(tf)
	if err := os.WriteFile(filepath.Join(allowed, "big.iso.torrent"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// logrotate's move, then SIGHUP: a new log file and a rescan.
	testenv.WaitFor(t, 5*time.Second, "access log written", func() error {
		if st, err := os.Stat(logfile); err != nil || st.Size() == 0 {
			return fmt.Errorf("empty access log")
		}
		return nil
	})
	os.Rename(logfile, logfile+".1")
	tr.Proc.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, 10*time.Second, "the torrent allowed after SIGHUP", func() error {
		_, err := announce(tr.Announce, q)
		return err
	})
	st, err := scrape(tr.Base+"/scrape", ti.InfoHash)
	if err != nil || st.Name != "big.iso" || st.Complete != 1 {
		t.Fatalf("scrape: %+v %v, want name big.iso and 1 seeder", st, err)
	}
	got, err := trackerGet(tr.Base + "/file?info_hash=" + escapeBytes(ti.InfoHash[:]))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("/file: %d bytes, %v; want the .torrent", len(got), err)
	}
	testenv.WaitFor(t, 5*time.Second, "the reopened access log", func() error {
		b, err := os.ReadFile(logfile)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte("GET /file?info_hash=")) {
			return fmt.Errorf("new log lacks the /file request: %q", b)
		}
		if !bytes.HasPrefix(b, []byte("127.0.0.1 - - [")) {
			return fmt.Errorf("not combined format: %q", b)
		}
		return nil
	})
}

func TestTrackerFastCGISocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "tracker.sock")
	startTracker(t, "--fcgi", "unix:"+sock, "--fcgi_socket_mode", "0660")
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want a socket with 0660", st.Mode())
	}
	// A second tracker must not steal a live socket.
	out, code := tpRun(t, "--port", fmt.Sprint(testenv.FreePort(t, "127.0.0.1")), "--bind", "127.0.0.1",
		"--dfile", filepath.Join(dir, "other.bencode"), "--fcgi", "unix:"+sock)
	if code == 0 || !strings.Contains(out, "another process is serving this socket") {
		t.Fatalf("second tracker on a live socket: exit %d, %q", code, out)
	}
}

// TestTrackerUDPBind: behind a web server HTTP listens on loopback while UDP (which no web
// server proxies) listens where clients reach it.
func TestTrackerUDPBind(t *testing.T) {
	tr := startTracker(t, "--udp_bind", "127.0.0.5")
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.5:%d", tr.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// BEP 15 connect: protocol id, action 0, transaction id.
	req := []byte{0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4}
	var resp [16]byte
	testenv.WaitFor(t, 10*time.Second, "a BEP 15 connect answer on 127.0.0.5", func() error {
		conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := conn.Write(req); err != nil {
			return err
		}
		n, err := conn.Read(resp[:])
		if err != nil {
			return err
		}
		if n != 16 || !bytes.Equal(resp[:8], []byte{0, 0, 0, 0, 1, 2, 3, 4}) {
			return fmt.Errorf("connect reply %x", resp[:n])
		}
		return nil
	})
	// HTTP stays on --bind only.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.5:%d", tr.Port), time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP answered on the UDP address")
	}
}
