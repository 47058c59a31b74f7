package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// readLog is a payload that records the length of every ReadAt.
type readLog struct {
	payload
	mu    sync.Mutex
	reads []int
}

func (r *readLog) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads = append(r.reads, len(p))
	r.mu.Unlock()
	return r.payload.ReadAt(p, off)
}

// vecHarness is a seed's peer whose writer side is one end of a loopback TCP connection; the
// test reads everything it sends from the other end.
type vecHarness struct {
	f    *fixture
	p    *peer
	log  *readLog
	got  chan []byte // everything the peer sent, once its side is closed
	conn *net.TCPConn
}

// newVecHarness seeds f holding have, with a Fast (BEP 6) peer served by sendVectored.
func newVecHarness(t *testing.T, f *fixture, have wire.Bitfield) *vecHarness {
	t.Helper()
	tor, err := New(f.mi, f.seedFiles(t), have, Config{PeerID: peerID('s'), Wire: &wire.Config{PeerID: peerID('s')}})
	if err != nil {
		t.Fatal(err)
	}
	log := &readLog{payload: tor.data}
	tor.data = log
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	h := &vecHarness{f: f, log: log, got: make(chan []byte, 1), conn: server.(*net.TCPConn)}
	h.p = &peer{t: tor, w: server, mode: sendVectored, fast: true, choking: true, wake: make(chan struct{}, 1)}
	h.p.ctx, h.p.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.p.cancel)
	go func() {
		client.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(client)
		h.got <- b
	}()
	return h
}

// sent closes the peer's side and returns every byte it wrote.
func (h *vecHarness) sent(t *testing.T) []byte {
	t.Helper()
	h.conn.Close()
	select {
	case b := <-h.got:
		return b
	case <-time.After(30 * time.Second):
		t.Fatal("reader did not finish")
		return nil
	}
}

// wantPiece is the PIECE message for r, built here rather than by the code under test.
func (h *vecHarness) wantPiece(b []byte, r request) []byte {
	var hdr [13]byte
	binary.BigEndian.PutUint32(hdr[0:], 9+r.length)
	hdr[4] = 7
	binary.BigEndian.PutUint32(hdr[5:], r.index)
	binary.BigEndian.PutUint32(hdr[9:], r.begin)
	off := int(r.index)*int(h.f.mi.Layout.PieceLength) + int(r.begin)
	return append(append(b, hdr[:]...), h.f.payload[off:off+int(r.length)]...)
}

func wantReject(b []byte, r request) []byte {
	var m [17]byte
	binary.BigEndian.PutUint32(m[0:], 13)
	m[4] = 16
	binary.BigEndian.PutUint32(m[5:], r.index)
	binary.BigEndian.PutUint32(m[9:], r.begin)
	binary.BigEndian.PutUint32(m[13:], r.length)
	return append(b, m[:]...)
}

// firstDiff is where a and b first differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSendVectoredBytesAndOrder: a batch leaves as control messages, then a PIECE (or, for a
// piece no longer held, a REJECT) per request, in request order with the right bytes; each
// run of blocks that follow one another in the torrent is read from disk once.
func TestSendVectoredBytesAndOrder(t *testing.T) {
	const pl = 64 << 10 // 4 blocks a piece
	f := newFixture(t, 8*pl-5000, pl)
	have := f.full()
	have.Clear(5)
	h := newVecHarness(t, f, have)
	const bs = wire.BlockSize
	batch := []request{
		{0, 0, bs}, {0, bs, bs}, {0, 2 * bs, bs}, {0, 3 * bs, bs}, {1, 0, bs}, // one run across a piece boundary
		{3, bs, bs}, {3, 2 * bs, bs}, // a second run
		{5, 0, bs},                          // not held: REJECT, and it does not break the run that follows
		{3, 3 * bs, bs},                     // continues the second run
		{0, 0, bs},                          // backwards: a new run
		{7, 0, bs}, {7, bs, pl - 5000 - bs}, // the torrent's short last block
	}
	ctrl := []byte{0, 0, 0, 1, byte(wire.Unchoke)}
	if err := h.p.sendVectored(ctrl, batch); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), ctrl...)
	var served int64
	for _, r := range batch {
		if r.index == 5 {
			want = wantReject(want, r)
			continue
		}
		want = h.wantPiece(want, r)
		served += int64(r.length)
	}
	got := h.sent(t)
	if !bytes.Equal(got, want) {
		t.Fatalf("sent %d bytes, want %d; first difference at byte %d", len(got), len(want), firstDiff(got, want))
	}
	if want := []int{5 * bs, 3 * bs, bs, pl - 5000}; !slices.Equal(h.log.reads, want) {
		t.Errorf("reads of %v bytes, want one a run: %v", h.log.reads, want)
	}
	if up := h.p.uploaded.Load(); up != served {
		t.Errorf("uploaded %d, want %d (the REJECTed block not counted)", up, served)
	}
}

// TestSendVectoredBoundsMemory: a batch of the longest requests a peer may send (16 of
// 128 KiB) goes out right, in several writes, and never reads more than vecDataBytes at a
// time: the buffer a peer's writer borrows stays bounded whatever it is asked for.
func TestSendVectoredBoundsMemory(t *testing.T) {
	const pl = 1 << 20
	f := newFixture(t, 3*pl, pl)
	h := newVecHarness(t, f, f.full())
	var batch []request
	for i := range maxBatch {
		off := uint32(i) * wire.MaxRequest
		batch = append(batch, request{off / pl, off % pl, wire.MaxRequest})
	}
	if err := h.p.sendVectored(nil, batch); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, r := range batch {
		want = h.wantPiece(want, r)
	}
	if got := h.sent(t); !bytes.Equal(got, want) {
		t.Fatalf("sent %d bytes, want %d; first difference at byte %d", len(got), len(want), firstDiff(got, want))
	}
	total := 0
	for _, n := range h.log.reads {
		if n > vecDataBytes {
			t.Errorf("a read of %d bytes, over the %d-byte bound", n, vecDataBytes)
		}
		total += n
	}
	if least := maxBatch * wire.MaxRequest / vecDataBytes; len(h.log.reads) < least || total != maxBatch*wire.MaxRequest {
		t.Errorf("%d reads of %d bytes in all, want at least %d of %d", len(h.log.reads), total, least, maxBatch*wire.MaxRequest)
	}
}

// TestChokeDropsQueuedBlocks: a choke drops the requests queued and not yet taken by the
// writer (a REJECT each, as the peer speaks Fast) but an allowed-fast one, and the writer then
// sends the CHOKE, the REJECTs and that one PIECE, in that order.
func TestChokeDropsQueuedBlocks(t *testing.T) {
	const pl = 64 << 10
	f := newFixture(t, 4*pl, pl)
	h := newVecHarness(t, f, f.full())
	p := h.p
	p.allowed = []uint32{2}
	p.setChoking(false)
	reqs := []request{{0, 0, wire.BlockSize}, {0, wire.BlockSize, wire.BlockSize}, {2, 0, wire.BlockSize}, {1, 0, wire.BlockSize}}
	for _, r := range reqs {
		p.onRequest(r)
	}
	p.setChoking(true)
	p.mu.Lock()
	ctrl := append([]byte(nil), p.out...)
	batch := p.take(nil)
	p.mu.Unlock()
	if len(batch) != 1 || batch[0] != reqs[2] {
		t.Fatalf("after the choke the writer takes %v, want only the allowed-fast %v", batch, reqs[2])
	}
	if err := p.sendVectored(ctrl, batch); err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 1, byte(wire.Unchoke), 0, 0, 0, 1, byte(wire.Choke)}
	for _, r := range []request{reqs[0], reqs[1], reqs[3]} {
		want = wantReject(want, r)
	}
	want = h.wantPiece(want, reqs[2])
	if got := h.sent(t); !bytes.Equal(got, want) {
		t.Fatalf("sent %d bytes, want %d; first difference at byte %d", len(got), len(want), firstDiff(got, want))
	}
}
