package e2e

// Attacks on the WebSocket tracker's frame reader, against the built tracker: many idle
// sockets, a frame sent a byte at a time, a length header of a terabyte, a flood of pings
// whose pongs are never read. Each is met by a limit, counted, and the other peers are
// served all the while.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/webswarm/webswarm/internal/testenv"
)

// wsRawFrame is a client frame (masked, FIN set) with opcode op, the length header saying
// length (which may differ from len(payload)).
func wsRawFrame(op byte, length uint64, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch {
	case length <= 125:
		b = append(b, 0x80|byte(length))
	case length <= 0xffff:
		b = append(b, 0x80|126, byte(length>>8), byte(length))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, length)
	}
	key := [4]byte{1, 2, 3, 4}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// wsRawDial opens a WebSocket from localIP and returns its socket, to write frames by hand.
func wsRawDial(t *testing.T, url, localIP string) net.Conn {
	t.Helper()
	d := websocket.Dialer{
		NetDial:          (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}).Dial,
		HandshakeTimeout: 10 * time.Second,
	}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("WebSocket from %s: %v", localIP, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws.NetConn()
}

// wsMetric reads one sample of the tracker's metrics (0 when absent).
func wsMetric(t *testing.T, tp *trackerProc, sample string) float64 {
	t.Helper()
	body := string(webRaw(t, webClient("127.0.0.1"), tp.Base+"/metrics", nil))
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return v
}

// wsServed checks that a well-behaved peer is still served: a scrape is answered.
func wsServed(t *testing.T, url string) {
	t.Helper()
	p := mustDial(t, url, "127.0.0.250")
	p.send(map[string]any{"action": "scrape", "info_hash": wsBin("any")})
	if r := p.recv(); r["files"] == nil {
		t.Fatalf("scrape: %v", r)
	}
	p.ws.Close()
}

func TestWebSocketTrackerFrameAttacks(t *testing.T) {
	const idle = 3
	tp := startTracker(t, "--ws_idle_timeout", strconv.Itoa(idle), "--ws_ping_interval", "1",
		"--ws_max_message", "4096", "--ws_max_connections_per_ip", "0", "--ws_max_connections", "0")
	url := "ws" + strings.TrimPrefix(tp.Base, "http") + "/announce"
	closed := func(reason string) float64 {
		return wsMetric(t, tp, `webswarm_tracker_ws_closed_total{reason="`+reason+`"}`)
	}
	waitClosed := func(reason string, want float64) {
		t.Helper()
		testenv.WaitFor(t, 15*time.Second, "a connection closed as "+reason, func() error {
			if got := closed(reason); got != want {
				return fmt.Errorf("closed{%s} = %v, want %v", reason, got, want)
			}
			return nil
		})
	}

	t.Run("many idle sockets hold no goroutine each", func(t *testing.T) {
		const n = 400
		base := wsMetric(t, tp, "go_goroutines")
		peers := make([]*wsPeer, n) // they answer pings, so they stay
		for i := range peers {
			peers[i] = mustDial(t, url, fmt.Sprintf("127.0.1.%d", 1+i%250))
		}
		testenv.WaitFor(t, 15*time.Second, "the idle peers counted", func() error {
			if got := wsMetric(t, tp, "webswarm_tracker_ws_connections"); got != n {
				return fmt.Errorf("webswarm_tracker_ws_connections = %v, want %d", got, n)
			}
			return nil
		})
		// A goroutine per connection would be 400 more; the tracker's own come and go
		// (HTTP handlers, the pinger's writes), a few dozen at most.
		if g := wsMetric(t, tp, "go_goroutines"); g-base > n/4 {
			t.Errorf("%v goroutines with %d idle WebSocket peers, %v without", g, n, base)
		}
		wsServed(t, url)
		for _, p := range peers {
			p.ws.Close()
		}
		testenv.WaitFor(t, 15*time.Second, "the idle peers gone", func() error {
			if got := wsMetric(t, tp, "webswarm_tracker_ws_connections"); got != 0 {
				return fmt.Errorf("webswarm_tracker_ws_connections = %v", got)
			}
			return nil
		})
	})

	t.Run("a frame a byte at a time is closed as idle", func(t *testing.T) {
		before := closed("idle")
		c := wsRawDial(t, url, "127.0.0.2")
		frame := wsRawFrame(1, 1000, []byte(strings.Repeat("x", 1000)))
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for _, b := range frame {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		// A partial frame refreshes nothing: the peer sent no message and no pong (the
		// pongs would have been in the middle of its frame) for the idle timeout.
		waitClosed("idle", before+1)
		wsServed(t, url)
	})

	t.Run("a length header of a terabyte is refused at once", func(t *testing.T) {
		before := closed("too_large")
		c := wsRawDial(t, url, "127.0.0.3")
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(wsRawFrame(1, 1<<40, nil)); err != nil {
			t.Fatal(err)
		}
		// The tracker answers close 1009 without waiting for the payload.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if hdr[0] != 0x88 || binary.BigEndian.Uint16(hdr[2:]) != 1009 {
			t.Fatalf("got frame % x, want close 1009", hdr)
		}
		waitClosed("too_large", before+1)
		wsServed(t, url)
	})

	t.Run("a ping flood whose pongs are not read is closed as stuck", func(t *testing.T) {
		before := closed("stuck")
		c := wsRawDial(t, url, "127.0.0.4")
		ping := wsRawFrame(9, 125, []byte(strings.Repeat("p", 125)))
		flood := []byte(strings.Repeat(string(ping), 1000))
		go func() {
			// Up to 130 MB of pings, never reading a pong: the tracker's socket buffers
			// fill, then its queue for this peer, and it gives up on the peer.
			for range 1000 {
				c.SetWriteDeadline(time.Now().Add(20 * time.Second))
				if _, err := c.Write(flood); err != nil {
					return
				}
			}
		}()
		waitClosed("stuck", before+1)
		if q := wsMetric(t, tp, "webswarm_tracker_ws_writes_queued_total"); q == 0 {
			t.Error("webswarm_tracker_ws_writes_queued_total = 0: the pongs were never queued")
		}
		wsServed(t, url)
	})
}
