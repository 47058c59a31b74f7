// Package e2e holds end-to-end tests: they build and start the real programs (tracker,
// seedctl) and drive them with real web servers and real BitTorrent clients, all on loopback.
package e2e

import (
	"crypto/sha1"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// trackerProc is a running `tracker` started by startTracker.
type trackerProc struct {
	Proc     *testenv.Proc
	Port     int    // HTTP and UDP (BEP 15) port on 127.0.0.1
	Base     string // "http://127.0.0.1:PORT"
	Announce string // Base + "/announce"
	Dir      string // the tracker's temporary directory (holds the state file)
	Dfile    string // the state file (--dfile); "" with a shared --store
}

// UDPAddr is the tracker's BEP 15 address, host:port.
func (tp *trackerProc) UDPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.Port)) }

// startTracker builds ./tracker (once per test binary) and starts it on a free port of
// 127.0.0.1 with a fresh state file in a temporary directory (none with a Redis --store,
// which refuses --dfile) and --nat_check 0 (test peers on loopback need not accept
// connections). extraArgs come last, so they override those
// defaults (--port, --dfile and --nat_check given there are honoured). It returns once
// /healthz answers 200, and the test's cleanup stops the tracker by PID.
func startTracker(t testing.TB, extraArgs ...string) *trackerProc {
	t.Helper()
	return startTrackerHealth(t, http.StatusOK, "", extraArgs...)
}

// startTrackerHealth is startTracker returning once /healthz answers status with a body
// containing bodyHas: a tracker started without its store answers 503.
func startTrackerHealth(t testing.TB, status int, bodyHas string, extraArgs ...string) *trackerProc {
	t.Helper()
	bin := testenv.Build(t, "./tracker")
	dir := t.TempDir()
	tp := &trackerProc{Dir: dir, Dfile: filepath.Join(dir, "state.bencode")}
	if v, ok := flagValue(extraArgs, "dfile"); ok {
		tp.Dfile = v
	}
	if v, ok := flagValue(extraArgs, "port"); ok {
		p, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("startTracker: --port %q: %v", v, err)
		}
		tp.Port = p
	} else {
		tp.Port = testenv.FreePort(t, "127.0.0.1")
	}
	args := []string{"--port", strconv.Itoa(tp.Port), "--bind", "127.0.0.1"}
	if st, ok := flagValue(extraArgs, "store"); ok && st != "memory" {
		tp.Dfile = "" // a shared store refuses --dfile
	} else {
		args = append(args, "--dfile", tp.Dfile)
	}
	if _, ok := flagValue(extraArgs, "nat_check"); !ok {
		args = append(args, "--nat_check", "0")
	}
	args = append(args, extraArgs...)
	tp.Base = fmt.Sprintf("http://127.0.0.1:%d", tp.Port)
	tp.Announce = tp.Base + "/announce"
	tp.Proc = testenv.Start(t, bin, args...)

	client := &http.Client{Timeout: 2 * time.Second}
	testenv.WaitFor(t, 15*time.Second, fmt.Sprintf("tracker /healthz answering %d", status), func() error {
		if done, err := tp.Proc.Exited(); done {
			t.Fatalf("tracker exited during start-up (%v):\n%s", err, testenv.Tail([]byte(tp.Proc.Output()), 4000))
		}
		resp, err := client.Get(tp.Base + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status || !strings.Contains(string(body), bodyHas) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	})
	return tp
}

// flagValue finds flag name in args, spelled -name or --name, with its value in the next
// argument or after "=". The last occurrence wins, as with the flag package.
func flagValue(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue // not a flag
		}
		if k, v, ok := strings.Cut(a, "="); ok && k == name {
			val, found = v, true
		} else if a == name && i+1 < len(args) {
			val, found = args[i+1], true
			i++
		}
	}
	return val, found
}

// announceResp is the part of an announce reply the e2e tests look at.
type announceResp struct {
	FailureReason string `bencode:"failure reason"`
	Interval      int64  `bencode:"interval"`
	MinInterval   int64  `bencode:"min interval"`
	Complete      int64  `bencode:"complete"`
	Incomplete    int64  `bencode:"incomplete"`
	Downloaded    int64  `bencode:"downloaded"`
	// Peers is kept raw: compact (a string) or the dictionary model (a list).
	Peers  bencode.Bytes `bencode:"peers"`
	Peers6 []byte        `bencode:"peers6"`
}

// trackerGet fetches rawURL from the tracker under test and returns the body of a 200 reply.
func trackerGet(rawURL string) ([]byte, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(rawURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", rawURL, resp.StatusCode, testenv.Tail(body, 300))
	}
	return body, nil
}

// announceQuery builds a BEP 3 announce query with the binary fields percent-encoded byte
// by byte (as clients do) plus the extra key=value pairs, which must be URL-safe already.
func announceQuery(infoHash [20]byte, peerID string, port int, left int64, extra ...string) string {
	q := "info_hash=" + escapeBytes(infoHash[:]) + "&peer_id=" + escapeBytes([]byte(peerID)) +
		"&port=" + strconv.Itoa(port) + "&uploaded=0&downloaded=0&left=" + strconv.FormatInt(left, 10)
	for _, e := range extra {
		q += "&" + e
	}
	return q
}

// announce sends one HTTP announce to announceURL and decodes the reply; a bencoded failure
// reason is returned as an error.
func announce(announceURL, query string) (*announceResp, error) {
	body, err := trackerGet(announceURL + "?" + query)
	if err != nil {
		return nil, err
	}
	var r announceResp
	if err := bencode.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("announce reply %q: %w", testenv.Tail(body, 300), err)
	}
	if r.FailureReason != "" {
		return &r, fmt.Errorf("failure reason: %s", r.FailureReason)
	}
	return &r, nil
}

// compactPeers decodes a compact IPv4 peer list (BEP 23) into "ip:port" strings; a
// dictionary-model list is decoded too.
func compactPeers(raw bencode.Bytes) ([]string, error) {
	var s []byte
	if err := bencode.Unmarshal(raw, &s); err == nil {
		if len(s)%6 != 0 {
			return nil, fmt.Errorf("compact peers: %d bytes, not a multiple of 6", len(s))
		}
		var out []string
		for i := 0; i < len(s); i += 6 {
			ip := net.IP(s[i : i+4])
			port := int(s[i+4])<<8 | int(s[i+5])
			out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		}
		return out, nil
	}
	var dict []struct {
		IP   string `bencode:"ip"`
		Port int    `bencode:"port"`
	}
	if err := bencode.Unmarshal(raw, &dict); err != nil {
		return nil, fmt.Errorf("peers is neither compact nor a list: %w", err)
	}
	var out []string
	for _, p := range dict {
		out = append(out, net.JoinHostPort(p.IP, strconv.Itoa(p.Port)))
	}
	return out, nil
}

// scrapeStats is one torrent's entry in a scrape reply's files dictionary.
type scrapeStats struct {
	Complete   int64  `bencode:"complete"`
	Incomplete int64  `bencode:"incomplete"`
	Downloaded int64  `bencode:"downloaded"`
	Name       string `bencode:"name"`
}

// scrape asks scrapeURL about infoHash and returns its entry (zero counts if absent).
func scrape(scrapeURL string, infoHash [20]byte) (scrapeStats, error) {
	body, err := trackerGet(scrapeURL + "?info_hash=" + escapeBytes(infoHash[:]))
	if err != nil {
		return scrapeStats{}, err
	}
	var r struct {
		FailureReason string                 `bencode:"failure reason"`
		Files         map[string]scrapeStats `bencode:"files"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil {
		return scrapeStats{}, fmt.Errorf("scrape reply %q: %w", testenv.Tail(body, 300), err)
	}
	if r.FailureReason != "" {
		return scrapeStats{}, fmt.Errorf("scrape failure reason: %s", r.FailureReason)
	}
	return r.Files[string(infoHash[:])], nil
}

// escapeBytes percent-encodes every byte outside the unreserved set (RFC 3986), upper-case.
func escapeBytes(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// torrentInfo is what the tests need from a .torrent file.
type torrentInfo struct {
	InfoHash [20]byte
	Name     string
	Announce string
}

// readTorrent reads a .torrent file: its info-hash (SHA-1 of the info dictionary's bytes as
// stored), name and announce URL.
func readTorrent(t testing.TB, path string) torrentInfo {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mi struct {
		Announce string        `bencode:"announce"`
		Info     bencode.Bytes `bencode:"info"`
	}
	if err := bencode.Unmarshal(data, &mi); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var info struct {
		Name string `bencode:"name"`
	}
	if err := bencode.Unmarshal(mi.Info, &info); err != nil {
		t.Fatalf("%s: info: %v", path, err)
	}
	return torrentInfo{InfoHash: sha1.Sum(mi.Info), Name: info.Name, Announce: mi.Announce}
}

// scrapeURLOf derives the scrape URL from an announce URL (BEP 48 convention).
func scrapeURLOf(t testing.TB, announceURL string) string {
	t.Helper()
	u, err := url.Parse(announceURL)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(u.Path, "/announce")
	if i < 0 {
		t.Fatalf("announce URL %s: no /announce to derive a scrape URL from", announceURL)
	}
	u.Path = u.Path[:i] + "/scrape" + u.Path[i+len("/announce"):]
	return u.String()
}
