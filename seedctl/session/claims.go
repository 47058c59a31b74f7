package session

import (
	"sync"

	"github.com/webswarm/webswarm/seedctl/wire"
)

// blockClaims are the pieces being assembled, shared between the loop (which starts and
// finishes pieces) and the readers (which read blocks straight into them, BlockBuffer).
// A reader claims a block before reading into it, so two peers sending the same block in
// endgame never write the same bytes at once: the second one reads into its own buffer
// and its copy is dropped.
type blockClaims struct {
	mu     sync.Mutex
	pieces map[uint32]*pieceBuf
}

// Block states.
const (
	blockEmpty   = iota
	blockReading // a reader is filling it
	blockFilled
)

// pieceBuf is a piece being assembled.
type pieceBuf struct {
	index  uint32
	data   []byte
	state  []uint8
	reader []*peer // who holds blockReading
}

func newBlockClaims() *blockClaims {
	return &blockClaims{pieces: map[uint32]*pieceBuf{}}
}

// start makes pb available for readers.
func (c *blockClaims) start(pb *pieceBuf) {
	c.mu.Lock()
	c.pieces[pb.index] = pb
	c.mu.Unlock()
}

// finish withdraws piece index (complete, or given up) and returns it.
func (c *blockClaims) finish(index uint32) *pieceBuf {
	c.mu.Lock()
	defer c.mu.Unlock()
	pb := c.pieces[index]
	delete(c.pieces, index)
	return pb
}

// claim returns where the block of n bytes at begin of piece index goes, or nil (not a
// block we assemble, a malformed one, or one already filled or being filled).
func (c *blockClaims) claim(p *peer, index, begin uint32, n int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	pb := c.pieces[index]
	if pb == nil || begin%wire.BlockSize != 0 {
		return nil
	}
	j := int(begin / wire.BlockSize)
	if j >= len(pb.state) || pb.state[j] != blockEmpty || n != min(wire.BlockSize, len(pb.data)-int(begin)) {
		return nil
	}
	pb.state[j], pb.reader[j] = blockReading, p
	return pb.data[begin : int(begin)+n]
}

// filled marks the block p read into the piece buffer as complete; false when block is
// not the piece buffer's (p's claim failed and it went to the Reader's own buffer).
func (c *blockClaims) filled(p *peer, index, begin uint32, block []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	pb := c.pieces[index]
	if pb == nil || begin%wire.BlockSize != 0 || len(block) == 0 {
		return false
	}
	j := int(begin / wire.BlockSize)
	if j >= len(pb.state) || pb.state[j] != blockReading || pb.reader[j] != p || &pb.data[begin] != &block[0] {
		return false
	}
	pb.state[j], pb.reader[j] = blockFilled, nil
	return true
}

// releaseClaims gives back the blocks p was reading when its connection ended.
func (c *blockClaims) releaseClaims(p *peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pb := range c.pieces {
		for j, r := range pb.reader {
			if r == p {
				pb.state[j], pb.reader[j] = blockEmpty, nil
			}
		}
	}
}
