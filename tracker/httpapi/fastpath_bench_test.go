package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// BenchmarkServe measures an announce (numwant 50, 100 torrents × 100 peers) over loopback,
// client and server in one process: net/http alone against the fast path with every
// connection on its own goroutine ("goroutine") and with Connection: close requests served by
// the accepting goroutine ("fast", on Linux), on a kept-alive connection and with a
// connection per request ("Connection: close").
func BenchmarkServe(b *testing.B) {
	benchServe(b, newHandlerTB(b), "nethttp", "goroutine", "fast")
}

// BenchmarkServeOverlay is BenchmarkServe's fast path with the tracker's store WithOverlay,
// as the tracker runs with WebSocket peers: every torrent has some, and each announce reply
// counts them. It must allocate no more than BenchmarkServe's "fast" runs.
func BenchmarkServeOverlay(b *testing.B) {
	st, err := swarm.NewMemory(swarm.Config{})
	if err != nil {
		b.Fatal(err)
	}
	o := benchOverlay{}
	for i := range 100 {
		o[bittorrent.InfoHash([]byte(fmt.Sprintf("%020d", i)))] = swarm.Counts{Complete: 1, Incomplete: 2}
	}
	tr, err := announce.New(announce.Config{}, swarm.WithOverlay(st, o), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close(); st.Close() })
	h, err := New(Config{Tracker: tr, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, OnlyLocalOverrideIP: 1})
	if err != nil {
		b.Fatal(err)
	}
	benchServe(b, h, "fast")
}

// benchOverlay is a swarm.Overlay of fixed counts.
type benchOverlay map[bittorrent.InfoHash]swarm.Counts

func (o benchOverlay) Counts(ih bittorrent.InfoHash) (swarm.Counts, bool) {
	c, ok := o[ih]
	return c, ok
}

func (o benchOverlay) RangeTorrents(fn func(bittorrent.InfoHash, swarm.Counts) bool) {
	for ih, c := range o {
		if !fn(ih, c) {
			return
		}
	}
}

func (o benchOverlay) Totals() (torrents, seeders, leechers int) { return len(o), len(o), 2 * len(o) }

// benchServe runs the announce benchmark against h with each server in names.
func benchServe(b *testing.B, h *Handler, names ...string) {
	var reqs []string
	for i := range 10_000 {
		ih := fmt.Sprintf("%020d", i%100)
		id := fmt.Sprintf("-TB0001-%012d", i)
		q := fmt.Sprintf("/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50", esc([]byte(ih)), esc([]byte(id)), 1024+i/100, i%5)
		h.ServeHTTP(discard{}, httptestRequest(q))
		if i%97 == 0 {
			reqs = append(reqs, q)
		}
	}
	// Requests built beforehand: the allocations counted are the server's (and net.Dial's).
	keep := make([][]byte, len(reqs))
	closing := make([][]byte, len(reqs))
	for i, q := range reqs {
		keep[i] = []byte("GET " + q + " HTTP/1.1\r\nHost: t\r\n\r\n")
		closing[i] = []byte("GET " + q + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
	}
	for _, name := range names {
		fast := name != "nethttp"
		hs := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var fs *Server
		if fast {
			fs = NewServer(h, hs)
			fs.noInline = name == "goroutine"
			go fs.Serve(l)
		} else {
			go hs.Serve(l)
		}
		addr := l.Addr().String()
		b.Run(name+"/keepalive", func(b *testing.B) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.Write(keep[i%len(keep)])
				readBenchReply(b, br)
				i++
			}
		})
		b.Run(name+"/close", func(b *testing.B) {
			br := bufio.NewReader(nil)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				c.Write(closing[i%len(closing)])
				br.Reset(c)
				readBenchReply(b, br)
				c.Close()
				i++
			}
		})
		if fast {
			fs.Close()
		} else {
			hs.Close()
		}
	}
}

func httptestRequest(target string) *http.Request {
	r, _ := http.NewRequest("GET", "http://tracker"+target, nil)
	r.RequestURI = target
	r.RemoteAddr = "127.0.0.1:1"
	return r
}

// readBenchReply reads one 200 reply with a Content-Length.
func readBenchReply(b *testing.B, br *bufio.Reader) {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if len(line) == 2 {
			break
		}
		if v, ok := strings.CutPrefix(string(line), "Content-Length: "); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if n < 0 {
		b.Fatal("no Content-Length")
	}
	if _, err := br.Discard(n); err != nil {
		b.Fatal(err)
	}
}
