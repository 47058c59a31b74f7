package e2e

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wsHash is the 20 bytes a wsBin string stands for (one byte per code point).
func wsHash(s string) [20]byte {
	var h [20]byte
	i := 0
	for _, r := range s {
		h[i] = byte(r)
		i++
	}
	return h
}

// udpScrape asks the tracker's UDP port (BEP 15) about ih: seeders, completed, leechers.
func udpScrape(t *testing.T, addr string, ih [20]byte) (seeders, completed, leechers uint32) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(req []byte, want int) []byte {
		resp := make([]byte, 1500)
		for range 5 { // UDP may drop a packet: a few tries, each bounded
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(resp)
			if err == nil && n >= want && binary.BigEndian.Uint32(resp[4:]) == binary.BigEndian.Uint32(req[12:]) {
				return resp[:n]
			}
		}
		t.Fatalf("UDP tracker %s: no answer", addr)
		return nil
	}
	req := binary.BigEndian.AppendUint64(nil, 0x41727101980)
	req = binary.BigEndian.AppendUint32(req, 0) // connect
	req = binary.BigEndian.AppendUint32(req, 0x5157)
	resp := roundTrip(req, 16)
	req = append(resp[8:16:16], 0, 0, 0, 2, 0, 0, 0x51, 0x58) // scrape, transaction ID
	req = append(req, ih[:]...)
	resp = roundTrip(req, 20)
	return binary.BigEndian.Uint32(resp[8:]), binary.BigEndian.Uint32(resp[12:]), binary.BigEndian.Uint32(resp[16:])
}

// TestTrackerOneSwarmView: the built tracker counts WebSocket (browser) peers and HTTP peers
// of a torrent as one swarm wherever a client or admin sees a count — the HTTP announce
// reply, HTTP and UDP scrapes, the WebSocket reply and scrape, stats.json — counts a browser's
// completion once, and saves it in the state file (but not the browser) across a restart.
func TestTrackerOneSwarmView(t *testing.T) {
	tr := startTracker(t)
	wsURL := strings.Replace(tr.Announce, "http://", "ws://", 1)
	ihs := wsBin("one swarm view")
	ih := wsHash(ihs)

	if _, err := announce(tr.Announce, announceQuery(ih, "-TR3000-aaaaaaaaaaaa", 7001, 0)); err != nil {
		t.Fatal(err)
	}
	b := mustDial(t, wsURL, "127.0.0.1")
	b.send(wsAnnounce(ihs, wsBin("browser-1"), 100))
	if r := b.recv(); r["complete"] != 1.0 || r["incomplete"] != 1.0 {
		t.Fatalf("WebSocket reply %v: want the HTTP seeder and the browser", r)
	}
	r, err := announce(tr.Announce, announceQuery(ih, "-TR3000-bbbbbbbbbbbb", 7002, 5, "event=started"))
	if err != nil || r.Complete != 1 || r.Incomplete != 2 {
		t.Fatalf("HTTP announce reply %+v, %v: want 1 seeder, 2 leechers (one a browser)", r, err)
	}
	if s, err := scrape(tr.Base+"/scrape", ih); err != nil || s.Complete != 1 || s.Incomplete != 2 {
		t.Fatalf("HTTP scrape %+v, %v", s, err)
	}
	if se, _, le := udpScrape(t, tr.UDPAddr(), ih); se != 1 || le != 2 {
		t.Fatalf("UDP scrape: %d seeders, %d leechers; want 1 and 2", se, le)
	}

	// The browser completes (twice: counted once).
	done := wsAnnounce(ihs, wsBin("browser-1"), 0)
	done["event"] = "completed"
	for range 2 {
		b.send(done)
		if r := b.recv(); r["complete"] != 2.0 || r["incomplete"] != 1.0 {
			t.Fatalf("WebSocket reply to completed: %v", r)
		}
	}
	b.send(map[string]any{"action": "scrape", "info_hash": ihs})
	f := b.recv()["files"].(map[string]any)[ihs].(map[string]any)
	if f["complete"] != 2.0 || f["incomplete"] != 1.0 || f["downloaded"] != 1.0 {
		t.Fatalf("WebSocket scrape %v", f)
	}
	if s, err := scrape(tr.Base+"/scrape", ih); err != nil || s.Complete != 2 || s.Downloaded != 1 {
		t.Fatalf("HTTP scrape after the browser's completion: %+v, %v", s, err)
	}
	if _, co, _ := udpScrape(t, tr.UDPAddr(), ih); co != 1 {
		t.Fatalf("UDP scrape: %d completed, want 1", co)
	}
	// A torrent only a browser shares is a torrent of the tracker's too.
	b.send(wsAnnounce(wsBin("browsers only"), wsBin("browser-1"), 9))
	b.recv()
	var j struct {
		Torrents  int            `json:"torrents"`
		Seeders   int            `json:"seeders"`
		Leechers  int            `json:"leechers"`
		Completed int            `json:"completed"`
		Peers     map[string]int `json:"peers"`
	}
	body, err := trackerGet(tr.Base + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	if j.Torrents != 2 || j.Seeders != 2 || j.Leechers != 2 || j.Completed != 1 || j.Peers["webtorrent"] != 2 {
		t.Fatalf("stats.json %s", body)
	}

	// Saved: the completion and the HTTP peers; the browser is gone with its socket.
	tr.Proc.Signal(syscall.SIGTERM)
	select {
	case <-tr.Proc.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("tracker did not exit on SIGTERM")
	}
	tr2 := startTracker(t, "--dfile", tr.Dfile)
	s, err := scrape(tr2.Base+"/scrape", ih)
	if err != nil || s.Complete != 1 || s.Incomplete != 1 || s.Downloaded != 1 {
		t.Fatalf("after a restart %+v, %v: want the HTTP seeder and leecher and the browser's completion", s, err)
	}
	if s, _ := scrape(tr2.Base+"/scrape", wsHash(wsBin("browsers only"))); s != (scrapeStats{}) {
		t.Fatalf("a browser-only torrent was saved: %+v", s)
	}
}
