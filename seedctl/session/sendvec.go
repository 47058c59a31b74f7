package session

import (
	"fmt"
	"net"
	"time"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// sendMode is how the writer moves blocks to a plaintext TCP peer. Encrypted (RC4) and
// WebRTC peers always take the copying path: their bytes pass through a writer that is not
// the socket.
type sendMode uint8

const (
	// sendCopy reads every block into one buffer after its PIECE header and writes the
	// buffer: one pread a block and one write a batch.
	sendCopy sendMode = iota
	// sendFile sends each PIECE header with MSG_MORE, then its block with sendfile(2): no
	// copy in user space, but two system calls a block and a 16 KiB segment each.
	sendFile
	// sendVectored reads each run of blocks that follow one another in the torrent with one
	// pread and writes the whole batch, headers between blocks, with one writev(2): two
	// system calls a batch, and segments as large as the socket takes.
	sendVectored
)

// vecDataBytes bounds the block bytes of one writev; a batch with more (requests longer
// than 16 KiB) goes in several. It holds the longest request.
const vecDataBytes = maxBatchBytes

// vecDataBytes must hold the longest block a peer may request.
var _ [vecDataBytes - wire.MaxRequest]struct{}

// vecBuf is the memory of one sendVectored call, pooled per torrent so that a peer holds
// none of it between writes.
type vecBuf struct {
	data []byte      // blocks, cap vecDataBytes
	head []byte      // control messages, PIECE headers and REJECTs, in wire order
	cuts []vecCut    // where head and data take turns
	iov  net.Buffers // the writev list, built from head, data and cuts
}

// vecCut ends a stretch of the wire: head up to h, then data up to d.
type vecCut struct{ h, d int }

func (t *Torrent) getVecBuf() *vecBuf {
	if b, ok := t.sendBufs.Get().(*vecBuf); ok {
		return b
	}
	return &vecBuf{
		data: make([]byte, 0, vecDataBytes),
		head: make([]byte, 0, 4<<10),
		cuts: make([]vecCut, 0, 2*maxBatch),
		iov:  make(net.Buffers, 0, 2*maxBatch+1),
	}
}

// sendVectored writes ctrl and then a PIECE for each request of batch (or a REJECT for a
// piece no longer held) to the TCP connection, in that order, with one writev per
// vecDataBytes of blocks. Blocks next to each other in the torrent (the usual run of
// requests through a piece) are read from disk with one pread.
func (p *peer) sendVectored(ctrl []byte, batch []request) error {
	vb := p.t.getVecBuf()
	defer p.t.sendBufs.Put(vb)
	pl := p.t.mi.Layout.PieceLength
	vb.head = append(vb.head[:0], ctrl...)
	vb.data, vb.cuts = vb.data[:0], vb.cuts[:0]
	runOff, runAt := int64(-1), 0 // the pending run: torrent offset, start in data
	// read fills data[runAt:] from the torrent at runOff.
	read := func() error {
		if runAt == len(vb.data) {
			return nil
		}
		if _, err := p.t.data.ReadAt(vb.data[runAt:], runOff); err != nil {
			p.t.readFailed(err)
			return fmt.Errorf("session: read at %d: %w", runOff, err)
		}
		runAt = len(vb.data)
		return nil
	}
	// flush reads the pending run and writes everything gathered.
	flush := func() error {
		if err := read(); err != nil {
			return err
		}
		if err := p.writeVec(vb); err != nil {
			return err
		}
		vb.head, vb.data, vb.cuts = vb.head[:0], vb.data[:0], vb.cuts[:0]
		runAt = 0
		return nil
	}
	for _, r := range batch {
		if !p.t.have.has(r.index) {
			vb.head = p.unheld(vb.head, r) // invalidated since it was queued
			continue
		}
		n := int(r.length)
		if len(vb.data)+n > cap(vb.data) {
			if err := flush(); err != nil {
				return err
			}
		}
		off := int64(r.index)*pl + int64(r.begin)
		if runOff+int64(len(vb.data)-runAt) != off {
			if err := read(); err != nil {
				return err
			}
			runOff = off
		}
		vb.head = appendPieceHeader(vb.head, r)
		vb.data = vb.data[:len(vb.data)+n]
		vb.cuts = append(vb.cuts, vecCut{len(vb.head), len(vb.data)})
	}
	return flush()
}

// writeVec writes what vb holds with one writev (the kernel may take it in parts; net.Buffers
// writes the rest) and counts the block bytes as sent.
func (p *peer) writeVec(vb *vecBuf) error {
	if len(vb.head) == 0 && len(vb.data) == 0 {
		return nil
	}
	arr := vb.iov[:0]
	h, d := 0, 0
	for _, c := range vb.cuts {
		vb.iov = append(vb.iov, vb.head[h:c.h], vb.data[d:c.d])
		h, d = c.h, c.d
	}
	if h < len(vb.head) {
		vb.iov = append(vb.iov, vb.head[h:])
	}
	// WriteTo consumes the slice it writes; the pooled array is kept in arr.
	_, err := vb.iov.WriteTo(p.w)
	vb.iov = arr
	if err != nil {
		return fmt.Errorf("session: write: %w", err)
	}
	if len(vb.data) > 0 {
		p.sent(int64(len(vb.data)))
	}
	p.writing.Store(time.Now().UnixNano())
	return nil
}
