package udpapi

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/tracker/announce"
)

// benchSwarm registers peers over torrents (peer s in torrent s % torrents, one in five of
// each torrent's peers a seeder, each peer from its own address) and returns a worker with
// each peer's signed re-announce packet (numwant 50) and source address.
func benchSwarm(b *testing.B, torrents, peers int) (w *worker, packets [][]byte, srcs []netip.AddrPort, now time.Time) {
	b.Helper()
	tr := newTracker(b, nil, announce.Config{})
	srv, err := New(Config{}, tr, nil)
	if err != nil {
		b.Fatal(err)
	}
	w = srv.newWorker()
	now = time.Now()
	packets, srcs = make([][]byte, peers), make([]netip.AddrPort, peers)
	for s := range peers {
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], 0x0a000000|uint32(s))
		srcs[s] = netip.AddrPortFrom(netip.AddrFrom4(ip), 6881)
		a := ann{ih: 0, numWant: 50, port: 6881, key: uint32(s)}
		if (s/torrents)%5 != 0 {
			a.left = 1 << 20
		}
		p := a.packet(srv.ids.make(srcs[s], now), uint32(s))
		binary.BigEndian.PutUint64(p[16:], uint64(s%torrents)) // info-hash
		binary.BigEndian.PutUint64(p[36:], uint64(s))          // peer ID
		packets[s] = p
		binary.BigEndian.PutUint32(p[80:], 2) // started
		if r, _ := w.handle(p, srcs[s], now); binary.BigEndian.Uint32(r) != actionAnnounce {
			b.Fatalf("announce %d: %q", s, r[8:])
		}
		binary.BigEndian.PutUint32(p[80:], 0) // and from now on re-announces
	}
	return w, packets, srcs, now
}

// BenchmarkHandleAnnounce measures the handler path of a re-announce (parse, connection-ID
// check, core, reply with 50 peers) in 1,000 torrents of 100,000 peers. It must report
// 0 allocs/op.
func BenchmarkHandleAnnounce(b *testing.B) {
	w, packets, srcs, now := benchSwarm(b, 1000, 100_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r, _ := w.handle(packets[i], srcs[i], now)
		if len(r) != announceReplyLen+50*6 {
			b.Fatalf("reply of %d bytes", len(r))
		}
		if i++; i == len(packets) {
			i = 0
		}
	}
}

// BenchmarkHandleScrape measures a scrape of BEP 15's 74 info-hashes.
func BenchmarkHandleScrape(b *testing.B) {
	w, _, srcs, now := benchSwarm(b, 1000, 10_000)
	p := scrapePacket(w.s.ids.make(srcs[0], now), 1)
	for i := range 74 {
		p = binary.BigEndian.AppendUint64(p, uint64(i))
		p = append(p, make([]byte, 12)...)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := w.handle(p, srcs[0], now); len(r) != 8+74*scrapeEntryLen {
			b.Fatalf("reply of %d bytes", len(r))
		}
	}
}

func BenchmarkHandleConnect(b *testing.B) {
	tr := newTracker(b, nil, announce.Config{})
	srv, err := New(Config{}, tr, nil)
	if err != nil {
		b.Fatal(err)
	}
	w := srv.newWorker()
	p := connectPacket(1)
	src := netip.MustParseAddrPort("192.0.2.1:6881")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := w.handle(p, src, now); len(r) != connectReplyLen {
			b.Fatalf("reply of %d bytes", len(r))
		}
	}
}

// BenchmarkRoundTrip is one client's announce and reply over loopback through a served
// socket (client and kernel included), read in batches (Linux) and one datagram at a time.
func BenchmarkRoundTrip(b *testing.B) {
	for _, noBatch := range []bool{false, true} {
		name := "batch"
		if noBatch {
			name = "single"
		}
		b.Run(name, func(b *testing.B) {
			f := serve(b, "127.0.0.1", Config{}, func(s *Server) { s.noBatch = noBatch })
			c := newClient(b, f.addr)
			c.connect()
			buf := make([]byte, 2048)
			p := ann{ih: 1, id: 'r', left: 1, numWant: 50, port: 6881}.packet(c.connID, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.conn.Write(p); err != nil {
					b.Fatal(err)
				}
				c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.conn.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
