package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// BenchmarkServe measures the seeding path alone: a raw peer requests every block of a
// 64 MiB torrent (pipelined 250 deep, as libtorrent does) and drops the data. Sub-benchmarks
// compare one pread a run of blocks and one writev a batch, sendfile(2) a block, one pread a
// block and one write a batch, and RC4 (MSE); segs/MiB is how many TCP segments the
// downloader received per MiB (Linux).
func BenchmarkServe(b *testing.B) {
	const size = 64 << 20
	f := newFixture(b, size, 1<<20)
	for _, mode := range []struct {
		name string
		send sendMode
		enc  wire.Encryption
	}{
		{"vectored", sendVectored, wire.Off},
		{"sendfile", sendFile, wire.Off},
		{"copy", sendCopy, wire.Off},
		{"rc4", sendCopy, wire.Require},
	} {
		b.Run(mode.name, func(b *testing.B) {
			seed := startNode(b, f.mi, f.seedFiles(b), f.full(), nodeOpts{tag: 's', enc: mode.enc,
				tweak: func(t *Torrent) { t.sendMode = mode.send }})
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			var segs uint64
			counted := false
			for i := range b.N {
				// A new peer ID each time: the seed may not have seen the last one leave.
				p := dialRaw(b, seed.addr, f.mi, byte(i), wire.DefaultReserved, mode.enc)
				fetchAll(b, p, f.mi.Layout.PieceLength, size)
				var n uint32
				n, counted = segmentsIn(b, p.conn)
				segs += uint64(n)
				p.c.Close()
			}
			if counted {
				// Segments the downloader received (and woke for), per MiB of payload.
				b.ReportMetric(float64(segs)/float64(b.N*(size>>20)), "segs/MiB")
			}
		})
	}
}

// fetchAll requests every block with a pipeline of 250 and reads them all.
func fetchAll(b testing.TB, p *rawPeer, pieceLength int64, total int64) {
	b.Helper()
	if err := fetchBlocks(p, pieceLength, total); err != nil {
		b.Fatal(err)
	}
}

// fetchBlocks is fetchAll for any goroutine: it returns what went wrong.
func fetchBlocks(p *rawPeer, pieceLength int64, total int64) error {
	p.w.Interested()
	if err := p.w.Flush(); err != nil {
		return err
	}
	for {
		m, err := p.next(10 * time.Second)
		if err != nil {
			return fmt.Errorf("waiting for unchoke: %w", err)
		}
		if m.ID == wire.Unchoke {
			break
		}
	}
	type blk struct{ i, begin, n uint32 }
	var blocks []blk
	for off := int64(0); off < total; off += wire.BlockSize {
		i := off / pieceLength
		n := min(wire.BlockSize, total-off, (i+1)*pieceLength-off)
		blocks = append(blocks, blk{uint32(i), uint32(off - i*pieceLength), uint32(n)})
	}
	sent, got := 0, 0
	for got < len(blocks) {
		for sent < len(blocks) && sent-got < 250 {
			bl := blocks[sent]
			p.w.Request(bl.i, bl.begin, bl.n)
			sent++
		}
		if err := p.w.Flush(); err != nil {
			return err
		}
		m, err := p.next(10 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d of %d blocks: %w", got, len(blocks), err)
		}
		if m.ID == wire.Piece {
			got++
		}
	}
	return nil
}
