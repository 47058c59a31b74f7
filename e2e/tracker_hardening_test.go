package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/testenv"
)

// Attacks on the tracker's limits and peer identity, from outside, against the built program.

// udpTracker is a BEP 15 client bound to one local address (127.0.0.x), for playing another
// host against the tracker.
type udpTracker struct {
	c      *net.UDPConn
	connID uint64
	tx     uint32
}

// dialUDPTracker connects from local (an IP of 127.0.0.0/8, any port) to the tracker at addr
// and does the BEP 15 connect exchange.
func dialUDPTracker(t *testing.T, local, addr string) *udpTracker {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	u := &udpTracker{c: c}
	req := make([]byte, 16)
	binary.BigEndian.PutUint64(req, 0x41727101980) // the protocol ID
	resp, err := u.roundTrip(req, 0)
	if err != nil || len(resp) != 16 {
		t.Fatalf("UDP connect from %s: % x, %v", local, resp, err)
	}
	u.connID = binary.BigEndian.Uint64(resp[8:])
	return u
}

// roundTrip sends req with action and a fresh transaction ID and returns the reply.
func (u *udpTracker) roundTrip(req []byte, action uint32) ([]byte, error) {
	u.tx++
	binary.BigEndian.PutUint32(req[8:], action)
	binary.BigEndian.PutUint32(req[12:], u.tx)
	resp := make([]byte, 2048)
	for range 3 { // UDP: a lost datagram is retried, as clients do
		if err := u.c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return nil, err
		}
		if _, err := u.c.Write(req); err != nil {
			return nil, err
		}
		n, err := u.c.Read(resp)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < 8 || binary.BigEndian.Uint32(resp[4:]) != u.tx {
			return nil, fmt.Errorf("UDP reply % x: wrong transaction", resp[:n])
		}
		return resp[:n], nil
	}
	return nil, fmt.Errorf("UDP: no reply after 3 tries")
}

// udpEvents are BEP 15's event numbers by name.
var udpEvents = map[string]uint32{"": 0, "completed": 1, "started": 2, "stopped": 3}

// announce sends a BEP 15 announce; a tracker error packet is returned as an error holding
// its message.
func (u *udpTracker) announce(ih [20]byte, peerID string, key uint32, port uint16, left uint64, event string) error {
	req := make([]byte, 98)
	binary.BigEndian.PutUint64(req, u.connID)
	copy(req[16:36], ih[:])
	copy(req[36:56], peerID)
	binary.BigEndian.PutUint64(req[64:], left)
	binary.BigEndian.PutUint32(req[80:], udpEvents[event])
	binary.BigEndian.PutUint32(req[88:], key)
	binary.BigEndian.PutUint32(req[92:], 0xffffffff) // num_want -1: the default
	binary.BigEndian.PutUint16(req[96:], port)
	resp, err := u.roundTrip(req, 1)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint32(resp) == 3 {
		return fmt.Errorf("UDP error: %s", resp[8:])
	}
	if binary.BigEndian.Uint32(resp) != 1 || len(resp) < 20 {
		return fmt.Errorf("UDP announce reply % x", resp)
	}
	return nil
}

// httpFrom returns an HTTP client whose connections come from local (127.0.0.x).
func httpFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// announceFrom sends an HTTP announce from client and returns the decoded reply and its
// failure reason ("" when none).
func announceFrom(t *testing.T, client *http.Client, announceURL, query string) (map[string]any, string) {
	t.Helper()
	resp, err := client.Get(announceURL + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := bencode.Unmarshal(buf.Bytes(), &r); err != nil {
		t.Fatalf("announce reply %q: %v", buf.Bytes(), err)
	}
	reason, _ := r["failure reason"].(string)
	return r, reason
}

// metricValue returns the value of the series named exactly series (name{labels}) on the
// tracker's /metrics page, or -1 when absent.
func metricValue(t *testing.T, tr *trackerProc, series string) float64 {
	t.Helper()
	v, err := monMetric(tr.Base+"/metrics", series)
	if err != nil {
		return -1
	}
	return v
}

// TestTrackerPeerIDTakeover: an attacker at 127.0.0.2 who knows a victim's peer ID cannot
// move it, stop it or count a completion for it, over HTTP or UDP, whether the victim (at
// 127.0.0.1) sent a key or not; and compact=0 replies do not hand peer IDs out.
func TestTrackerPeerIDTakeover(t *testing.T) {
	tr := startTracker(t)
	ih := tpHash("takeover")
	home, evil := httpFrom("127.0.0.1"), httpFrom("127.0.0.2")
	victims := []struct{ id, key string }{
		{"-TR3000-keylessvictm", ""},
		{"-LT2080-keyedvictim!", "A1B2C3D4"},
	}
	for i, v := range victims {
		q := announceQuery(ih, v.id, 7001+i, 100, "event=started")
		if v.key != "" {
			q += "&key=" + v.key
		}
		if _, reason := announceFrom(t, home, tr.Announce, q); reason != "" {
			t.Fatalf("victim %s: %s", v.id, reason)
		}
	}
	// What an attacker reads: a compact=0 reply without peer IDs.
	r, reason := announceFrom(t, home, tr.Announce, announceQuery(ih, "-TR3000-observer0000", 7009, 100, "compact=0"))
	if reason != "" {
		t.Fatal(reason)
	}
	peers, _ := r["peers"].([]any)
	if len(peers) != 2 {
		t.Fatalf("compact=0 peers %v: want both victims", r["peers"])
	}
	for _, p := range peers {
		if _, ok := p.(map[string]any)["peer id"]; ok {
			t.Errorf("compact=0 reply hands out peer IDs: %v", p)
		}
	}

	udp := dialUDPTracker(t, "127.0.0.2", tr.UDPAddr())
	for i, v := range victims {
		for _, ev := range []string{"", "stopped", "completed", "started"} {
			left := int64(100)
			if ev == "completed" {
				left = 0
			}
			for _, key := range []string{"", "guess0001"} {
				q := announceQuery(ih, v.id, 6666, left)
				if ev != "" {
					q += "&event=" + ev
				}
				if key != "" {
					q += "&key=" + key
				}
				if _, reason := announceFrom(t, evil, tr.Announce, q); reason == "" {
					t.Errorf("HTTP from 127.0.0.2: victim %d, event %q, key %q accepted", i, ev, key)
				} else if want := map[bool]string{true: "ip changed", false: "peer_id is in use"}[v.key == ""]; !strings.Contains(reason, want) {
					t.Errorf("HTTP from 127.0.0.2: victim %d, event %q: reason %q, want %q", i, ev, reason, want)
				}
			}
			for _, key := range []uint32{0, 0x41424344} {
				if err := udp.announce(ih, v.id, key, 6666, uint64(left), ev); err == nil {
					t.Errorf("UDP from 127.0.0.2: victim %d, event %q, key %x accepted", i, ev, key)
				}
			}
		}
	}

	// Both victims are still where they were, leechers, and nothing was completed.
	st, err := scrape(tr.Base+"/scrape", ih)
	if err != nil {
		t.Fatal(err)
	}
	if st.Incomplete != 3 || st.Complete != 0 || st.Downloaded != 0 {
		t.Errorf("after the attack: %+v, want 3 leechers (2 victims, the observer), no completion", st)
	}
	r, _ = announceFrom(t, home, tr.Announce, announceQuery(ih, "-TR3000-observer0000", 7009, 100))
	got, err := compactPeers(bencode.Bytes(mustBencode(t, r["peers"])))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "127.0.0.1:7001 127.0.0.1:7002" && strings.Join(got, " ") != "127.0.0.1:7002 127.0.0.1:7001" {
		t.Errorf("peers after the attack: %v, want the victims at 127.0.0.1:7001 and :7002", got)
	}
	// The victims themselves still act: the keyed one moves with its key.
	if _, reason := announceFrom(t, evil, tr.Announce, announceQuery(ih, victims[1].id, 7002, 100, "key="+victims[1].key)); reason != "" {
		t.Errorf("keyed victim moving with its own key: %s", reason)
	}
	if v := metricValue(t, tr, `webswarm_tracker_failures_total{reason="ip_changed"}`); v < 16 {
		t.Errorf(`webswarm_tracker_failures_total{reason="ip_changed"} = %v, want the 16 keyless attempts counted`, v)
	}

	// A UDP client sending key 0 has no key: another sending key 0 cannot stop it.
	ih2 := tpHash("takeover-udp")
	if err := dialUDPTracker(t, "127.0.0.1", tr.UDPAddr()).announce(ih2, victims[0].id, 0, 7001, 100, "started"); err != nil {
		t.Fatal(err)
	}
	if err := udp.announce(ih2, victims[0].id, 0, 6666, 100, "stopped"); err == nil || !strings.Contains(err.Error(), "ip changed") {
		t.Errorf("UDP victim with key 0 stopped from 127.0.0.2 with key 0: %v, want ip changed", err)
	}
	if st, err := scrape(tr.Base+"/scrape", ih2); err != nil || st.Incomplete != 1 {
		t.Errorf("UDP victim after the attack: %+v, %v", st, err)
	}
}

func mustBencode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrackerStateFileDirChecked: a --dfile in a missing or read-only directory stops
// start-up with a message naming the flag and the directory, rather than losing the state at
// the first save or at shutdown.
func TestTrackerStateFileDirChecked(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	for _, dir := range []string{missing, "/proc"} { // /proc: read-only even for root
		dfile := filepath.Join(dir, "state.bencode")
		out, code := tpRun(t, "--port", strconv.Itoa(testenv.FreePort(t, "127.0.0.1")), "--bind", "127.0.0.1", "--udp_port", "0", "--dfile", dfile)
		if code == 0 || !strings.Contains(out, "--dfile") || !strings.Contains(out, dir) {
			t.Errorf("--dfile %s: exit %d, output %q; want a failure naming --dfile and %s", dfile, code, testenv.Tail([]byte(out), 400), dir)
		}
	}
}

// TestTrackerStaleSaveTempRemoved: a kill -9 during a save leaves the save's temporary file
// (.BASE.tmp-DIGITS) beside the state file; the next start removes it, and nothing else.
func TestTrackerStaleSaveTempRemoved(t *testing.T) {
	dir := t.TempDir()
	dfile := filepath.Join(dir, "state.bencode")
	stale := filepath.Join(dir, ".state.bencode.tmp-2912345678")
	other := filepath.Join(dir, ".state.bencode.tmp-notours")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("d5:peersd20:cut off mid-sa"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tr := startTracker(t, "--dfile", dfile)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file of a killed save still there after start: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file not named as our saves name theirs was touched: %v", err)
	}
	if v := metricValue(t, tr, "webswarm_tracker_state_stale_temp_files_removed_total"); v != 1 {
		t.Errorf("webswarm_tracker_state_stale_temp_files_removed_total = %v, want 1", v)
	}
}

// TestTrackerUDPTorrentFloodHitsPerIPLimit: one UDP client registering new torrents as fast
// as it can (2M in 33 s once) is stopped at --max_peers_per_ip, at its default, without a
// refused peer creating a torrent; another client still gets in; the full scrape, now over
// --max_full_scrape torrents, is refused rather than built.
func TestTrackerUDPTorrentFloodHitsPerIPLimit(t *testing.T) {
	const perIP = 20_000 // the default of --max_peers_per_ip
	tr := startTracker(t)
	flood := dialUDPTracker(t, "127.0.0.3", tr.UDPAddr())
	accepted := 0
	var refusal error
	for i := range perIP + 100 { // bounded: the limit and a little more
		var ih [20]byte
		binary.BigEndian.PutUint64(ih[:], uint64(i)+1)
		copy(ih[8:], "udp-flood-ih")
		err := flood.announce(ih, fmt.Sprintf("-XX0001-%012d", i), uint32(i)+1, 6881, 1, "started")
		if err != nil {
			if !strings.Contains(err.Error(), "UDP error") {
				t.Fatalf("announce %d: %v", i, err)
			}
			refusal = err
			continue
		}
		accepted++
	}
	if accepted != perIP || refusal == nil || !strings.Contains(refusal.Error(), "too many peers registered from your IP") {
		t.Fatalf("flood from one IP: %d announces accepted (want %d), last refusal %v", accepted, perIP, refusal)
	}
	other := dialUDPTracker(t, "127.0.0.4", tr.UDPAddr())
	if err := other.announce(tpHash("honest"), "-TR3000-honestpeer00", 7, 6881, 1, "started"); err != nil {
		t.Fatalf("another client during the flood: %v", err)
	}
	if v := metricValue(t, tr, `webswarm_tracker_failures_total{reason="ip_full"}`); v != 100 {
		t.Errorf(`webswarm_tracker_failures_total{reason="ip_full"} = %v, want 100`, v)
	}
	var st struct {
		Torrents int `json:"torrents"`
	}
	body, err := trackerGet(tr.Base + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Torrents != perIP+1 {
		t.Errorf("stats.json torrents %d (%v), want %d: a refused peer must not create a torrent", st.Torrents, err, perIP+1)
	}
	body, err = trackerGet(tr.Base + "/scrape")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("failure reason")) || !bytes.Contains(body, []byte("more than 10000 torrents")) || len(body) > 512 {
		t.Errorf("full scrape of %d torrents: %q, want a short failure (--max_full_scrape 10000)", perIP+1, testenv.Tail(body, 300))
	}
	if v := metricValue(t, tr, `webswarm_tracker_failures_total{reason="full_scrape_too_big"}`); v != 1 {
		t.Errorf(`webswarm_tracker_failures_total{reason="full_scrape_too_big"} = %v, want 1`, v)
	}
	t.Logf("RSS with %d torrents of one peer: %.1f MiB", perIP+1, metricValue(t, tr, "process_resident_memory_bytes")/(1<<20))
}
