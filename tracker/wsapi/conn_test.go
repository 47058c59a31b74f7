package wsapi

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestConnReaders runs frames through the server's two readers: the poller's event loops
// and, where there is no poller, a goroutine per connection.
func TestConnReaders(t *testing.T) {
	for _, mode := range []struct {
		name   string
		noPoll bool
	}{{"poller", false}, {"goroutine", true}} {
		t.Run(mode.name, func(t *testing.T) {
			s, url := newTestServer(t, Config{MaxMessage: 16 << 10, noPoll: mode.noPoll})
			if got := s.poll != nil; got == mode.noPoll {
				t.Fatalf("poller in use: %v", got)
			}
			// A message in fragments: gorilla's writer sends one frame per buffer.
			d := websocket.Dialer{WriteBufferSize: 1024}
			ws, _, err := d.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.Close() })
			c := &client{t: t, ws: ws}
			c.sendJSON(map[string]any{"action": "scrape", "info_hash": bin("frag"), "pad": strings.Repeat("x", 8000)})
			if m := c.recv(); m["files"] == nil {
				t.Fatalf("fragmented scrape: %v", m)
			}
			// A ping is answered with its payload.
			pong := make(chan string, 1)
			ws.SetPongHandler(func(s string) error { pong <- s; return nil })
			if err := ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			c.sendJSON(map[string]any{"action": "scrape", "info_hash": bin("after-ping")})
			c.recv() // reading runs the pong handler
			select {
			case p := <-pong:
				if p != "hello" {
					t.Fatalf("pong %q", p)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no pong")
			}
			// A close is answered with a close, and counted as the client's.
			before := testutil.ToFloat64(s.m.closed.WithLabelValues(closedClient))
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(5*time.Second))
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("after close: %v, want close 1000", err)
			}
			waitFor(t, func() bool { return testutil.ToFloat64(s.m.closed.WithLabelValues(closedClient)) == before+1 })
			// Over the limit: close 1009.
			big := dial(t, url, nil)
			big.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 17<<10)))
			big.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := big.ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Fatalf("too large: %v, want close 1009", err)
			}
			waitFor(t, func() bool { return s.open.Load() == 0 })
		})
	}
}
