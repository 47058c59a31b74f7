package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/testenv"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestConnCap: at the cap, a new connection closes the one that has waited longest for a
// request (a slow head, a silent new one, an idle keep-alive one), never one being
// answered, and keep-alive clients go on being served; the count goes back down as
// connections close. Inline serving on and off.
func TestConnCap(t *testing.T) {
	for _, noInline := range []bool{false, true} {
		h := newHandlerTB(t)
		fs := NewServer(h, &http.Server{ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute})
		fs.noInline = noInline
		if err := fs.LimitConns(3, prometheus.NewRegistry()); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fs.Serve(l)
		addr := l.Addr().String()
		req := rawGet("/scrape?info_hash=" + esc(ihA))

		// Three slow heads fill the cap.
		var slow []net.Conn
		for range 3 {
			c := dial(t, addr)
			defer c.Close()
			io.WriteString(c, req[:10])
			waitActive(t, fs, c)
			slow = append(slow, c)
		}
		// A keep-alive client gets in, twice on one connection, and each slow one it
		// displaces is the oldest.
		ka := dial(t, addr)
		defer ka.Close()
		br := bufio.NewReader(ka)
		for i := range 2 {
			io.WriteString(ka, req)
			if resp := readReply(t, br); resp.StatusCode != 200 {
				t.Fatalf("noInline=%v: keep-alive request %d: %d", noInline, i, resp.StatusCode)
			}
		}
		closedByServer(t, slow[0], "the oldest slow connection")
		if got := counterValue(t, fs.cap.evicted); got != 1 {
			t.Errorf("noInline=%v: %v evicted, want 1", noInline, got)
		}
		// Another newcomer displaces the next oldest slow head, not the keep-alive client.
		c := dial(t, addr)
		defer c.Close()
		io.WriteString(c, req)
		readReply(t, bufio.NewReader(c))
		closedByServer(t, slow[1], "the second slow connection")
		io.WriteString(ka, req)
		if resp := readReply(t, br); resp.StatusCode != 200 {
			t.Fatalf("noInline=%v: keep-alive request after another newcomer: %d", noInline, resp.StatusCode)
		}
		for _, c := range append(slow, ka, c) {
			c.Close()
		}
		testenv.WaitFor(t, 5*time.Second, "the connection count to drop", func() error {
			if n := fs.open.Load(); n != 0 {
				return fmt.Errorf("%d open", n)
			}
			return nil
		})
		fs.Close()
	}
}
