package session

import (
	"encoding/binary"
	"io"
	"sync"
	"testing"

	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// headerPayload is a seed's payload that records how each block left by sendfile: with its
// PIECE header handed over as the prefix (one segment on the wire), or alone.
type headerPayload struct {
	*storage.Files
	mu                      sync.Mutex
	withHeader, bare, wrong int
}

func (h *headerPayload) SendTo(w io.Writer, off, n int64) (int64, error) {
	h.mu.Lock()
	h.bare++
	h.mu.Unlock()
	return h.Files.SendTo(w, off, n)
}

func (h *headerPayload) SendWithPrefix(w io.Writer, prefix []byte, off, n int64) (int64, error) {
	h.mu.Lock()
	// The prefix ends with the block's PIECE header: length 9+n, id 7.
	if k := len(prefix); k >= pieceHeaderLen && binary.BigEndian.Uint32(prefix[k-pieceHeaderLen:]) == uint32(9+n) &&
		prefix[k-pieceHeaderLen+4] == byte(wire.Piece) {
		h.withHeader++
	} else {
		h.wrong++
	}
	h.mu.Unlock()
	return h.Files.SendWithPrefix(w, prefix, off, n)
}

// TestSendfileHeaderGoesWithBlock: on the sendfile path every PIECE header leaves together
// with its block. Written alone first, each header was a system call and, as Go sets
// TCP_NODELAY, a 13-byte segment of its own that woke the downloader: twice the segments
// for the same bytes, which cost seeding 1 GiB to libtorrent its lead.
func TestSendfileHeaderGoesWithBlock(t *testing.T) {
	const size = 1 << 20
	f := newFixture(t, size, 256<<10)
	hp := &headerPayload{Files: f.seedFiles(t)}
	seed := startNode(t, f.mi, hp.Files, f.full(), nodeOpts{tag: 's',
		tweak: func(t *Torrent) { t.data = hp; t.sendMode = sendFile }})
	p := dialRaw(t, seed.addr, f.mi, 1, wire.DefaultReserved, wire.Off)
	defer p.c.Close()
	fetchAll(t, p, f.mi.Layout.PieceLength, size)
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if blocks := size / wire.BlockSize; hp.withHeader != blocks || hp.bare != 0 || hp.wrong != 0 {
		t.Fatalf("of %d blocks, %d left with their PIECE header, %d alone, %d with a prefix that is not their header",
			blocks, hp.withHeader, hp.bare, hp.wrong)
	}
}
