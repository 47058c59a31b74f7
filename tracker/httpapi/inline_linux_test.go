package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInlineAnswersAsNetHTTP sends "Connection: close" requests, one per connection, to the
// fast path and to net/http alone, and compares the replies, access logs and metrics. The
// ones the accepting goroutine can serve whole are served there (inlined counts them); the
// rest take serveConn's way. With inline serving off, every reply is the same.
func TestInlineAnswersAsNetHTTP(t *testing.T) {
	ann := func(id string, port int, extra string) string {
		return "/announce?" + annQ(ihA, id, port, extra)
	}
	closeHdr := "Connection: close"
	for _, noInline := range []bool{false, true} {
		t.Run(fmt.Sprintf("noInline=%v", noInline), func(t *testing.T) {
			fast, plain := newPair(t, pairOpts{noInline: noInline})
			// Serve sets TCP_DEFER_ACCEPT: a connection that comes before can be accepted
			// before its request is in. Once one is answered, none can.
			compare(t, fast, plain, "first", rawGet("/scrape", closeHdr))
			for _, tc := range []struct {
				name   string
				raw    string
				inline int64 // connections the accepting goroutine serves whole
				handed int64
			}{
				{"announce, close", rawGet(ann("-TR3000-aaaaaaaaaaaa", 6881, "100&compact=1"), closeHdr, "X-Forwarded-For: 203.0.113.7"), 1, 0},
				{"seeder announce, close", rawGet(ann("-TR3000-bbbbbbbbbbbb", 6882, "0&compact=1"), closeHdr), 1, 0},
				{"announce failure, close", rawGet("/announce?info_hash=short", closeHdr), 1, 0},
				{"scrape, close", rawGet("/scrape?info_hash="+esc(ihA), closeHdr), 1, 0},
				{"HTTP/1.0", "GET " + ann("-CD0303-cccccccccccc", 2706, "5") + " HTTP/1.0\r\nUser-Agent: Enhanced-CTorrent/dnh3.3.2\r\n\r\n", 1, 0},
				// A 7 KiB reply: compose leaves it to serveConn, which writes it.
				{"scrape with a reply over 4 KiB, close", rawGet("/scrape?"+scrapeQ(100), closeHdr), 0, 0},
				// A head over the first read's 4 KiB: serveConn reads on.
				{"scrape with a head over 4 KiB, close", rawGet("/scrape?"+scrapeQ(200), closeHdr), 0, 0},
				{"keep-alive", rawGet("/scrape?info_hash=" + esc(ihB)), 0, 0},
				{"HTTP/1.0 keep-alive", "GET /scrape HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, 0},
				{"close, then more (linger)", rawGet("/scrape?info_hash="+esc(ihB), closeHdr) + rawGet("/scrape"), 0, 0},
				{"stats, close", rawGet("/stats", closeHdr), 0, 1},
				{"HEAD, close", "HEAD " + ann("-TR3000-aaaaaaaaaaaa", 6881, "0") + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 0, 1},
				{"bare LF", "GET /scrape HTTP/1.1\nHost: t\nConnection: close\n\n", 0, 1},
				{"no bytes", "", 0, 0},
			} {
				before := fast.fs.inlined.Load()
				var methods []string
				if strings.HasPrefix(tc.raw, "HEAD") {
					methods = []string{"HEAD"}
				}
				rs, handed := compare(t, fast, plain, tc.name, tc.raw, methods...)
				if tc.raw != "" && len(rs) != 1 {
					t.Errorf("%s: %d replies, want 1", tc.name, len(rs))
				}
				want := tc.inline
				if noInline {
					want = 0
				}
				if got := fast.fs.inlined.Load() - before; got != want {
					t.Errorf("%s: %d connections served inline, want %d", tc.name, got, want)
				}
				if handed != tc.handed {
					t.Errorf("%s: %d hand-offs, want %d", tc.name, handed, tc.handed)
				}
			}
			fl, pl := logLines(t, fast, 13), logLines(t, plain, 13)
			if !slices.Equal(fl, pl) {
				t.Errorf("access logs differ:\nfast     %q\nnet/http %q", fl, pl)
			}
			if fm, pm := metrics(t, fast.reg), metrics(t, plain.reg); !slices.Equal(fm, pm) {
				t.Errorf("metrics differ:\nfast     %q\nnet/http %q", fm, pm)
			}
		})
	}
}

// TestInlineHeadInPieces: a connection whose first bytes are not a whole head moves to
// serveConn with them, which reads the rest (and counts as busy for Shutdown meanwhile).
func TestInlineHeadInPieces(t *testing.T) {
	fs, addr, _ := startFast(t, 5*time.Second, 5*time.Second)
	c := dial(t, addr)
	full := rawGet("/scrape?info_hash="+esc(ihB), "Connection: close")
	io.WriteString(c, full[:20])
	waitActive(t, fs, c)
	io.WriteString(c, full[20:])
	out := closedByServer(t, c, "head in pieces")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "\r\nConnection: close\r\n") || !strings.HasSuffix(out, "ee") {
		t.Errorf("reply %q", out)
	}
	if n := fs.inlined.Load(); n != 0 {
		t.Errorf("%d connections served inline, want 0", n)
	}
	// The next one, whole, is.
	c = dial(t, addr)
	io.WriteString(c, full)
	resp := readReply(t, bufio.NewReader(c))
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("reply %d, close %v", resp.StatusCode, resp.Close)
	}
	if n := fs.inlined.Load(); n != 1 {
		t.Errorf("%d connections served inline, want 1", n)
	}
}

// TestInlineManyConnections: more connections at once than one accept batch, from several
// clients, each answered once and closed; Shutdown then leaves nothing listening.
func TestInlineManyConnections(t *testing.T) {
	fs, addr, done := startFast(t, 5*time.Second, 5*time.Second)
	req := rawGet("/scrape?info_hash="+esc(ihA), "Connection: close")
	// A first exchange: Serve has set TCP_DEFER_ACCEPT once it is answered (a connection
	// that came before can be accepted before its request is in).
	exchange(t, addr, req)
	before := fs.inlined.Load()
	const n = 3 * acceptBatch
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		io.WriteString(conns[i], req)
	}
	for i, c := range conns {
		out := closedByServer(t, c, fmt.Sprintf("connection %d", i))
		if strings.Count(out, "HTTP/1.1 200 OK\r\n") != 1 {
			t.Fatalf("connection %d: %q", i, out)
		}
	}
	if got := fs.inlined.Load() - before; got != n {
		t.Errorf("%d connections served inline, want %d", got, n)
	}
	fs.Close()
	<-done
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting after Close")
	}
}
