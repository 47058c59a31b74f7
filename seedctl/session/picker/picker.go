package picker

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// BlockSize is the length of a request (16 KiB, what every client asks and serves); only the
// last block of a piece can be shorter.
const BlockSize = 16 << 10

// Block is one request: Length bytes at Begin inside piece Piece.
type Block struct{ Piece, Begin, Length uint32 }

type pieceState uint8

const (
	candidate pieceState = iota // missing, nobody working on it
	started                     // missing, has block state (see partial)
	reserved                    // missing, reserved by a web-seed run
	had                         // verified
)

// Picker is the download state of one torrent: which pieces we have, which peers have what,
// and which blocks are outstanding where. Build it with New; see the package documentation.
type Picker struct {
	numPieces   int
	pieceLength int64
	total       int64

	have  bitset
	nHave int
	state []pieceState

	avail []int32 // non-seed peers having each piece
	seeds int     // peers having every piece

	order []int32 // see order.go
	pos   []int32
	start []int32

	parts     []*partial // started pieces, oldest first
	partOf    []*partial // by piece index; nil unless started
	pool      []*partial // partials to reuse
	freeParts int        // free (unrequested) blocks over all partials

	runFrom int // no candidate below this index (PickRun's scan starts here)

	peers []*Peer
	rng   *rand.Rand

	cancel []*Peer // Received's result, reused
}

// partial is the block state of a started piece.
type partial struct {
	index     int
	owner     *Peer // the peer that started it; it is offered to that peer first
	blocks    []block
	nFree     int     // blocks nobody has requested
	nReceived int     // blocks received
	next      int     // no free block below this index
	from      []*Peer // distinct peers that delivered blocks
}

// block is one block of a partial piece: free (req == nil, !done), outstanding at req and
// (in endgame) at more, or done.
type block struct {
	req  *Peer
	more []*Peer
	done bool
}

// New returns a Picker for a torrent of numPieces pieces of pieceLength bytes (the last one
// shorter) and total bytes, with nothing had and no peers, tie-breaking with a randomly
// seeded source. It panics when the three do not describe a torrent (a caller bug: the
// metafile package validated them).
func New(numPieces int, pieceLength, total int64) *Picker {
	return NewSeeded(numPieces, pieceLength, total, rand.Uint64())
}

// NewSeeded is New with the tie-break source seeded by seed, for reproducible tests and
// simulations.
func NewSeeded(numPieces int, pieceLength, total int64, seed uint64) *Picker {
	if numPieces <= 0 || numPieces > 1<<31-1 || pieceLength <= 0 || total <= 0 ||
		(total+pieceLength-1)/pieceLength != int64(numPieces) || (pieceLength+BlockSize-1)/BlockSize > 1<<31-1 {
		panic(fmt.Sprintf("picker: %d pieces of %d bytes cannot hold %d bytes", numPieces, pieceLength, total))
	}
	p := &Picker{
		numPieces:   numPieces,
		pieceLength: pieceLength,
		total:       total,
		have:        newBitset(numPieces),
		state:       make([]pieceState, numPieces),
		avail:       make([]int32, numPieces),
		order:       make([]int32, numPieces),
		pos:         make([]int32, numPieces),
		start:       []int32{0, int32(numPieces)},
		partOf:      make([]*partial, numPieces),
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	for i := range p.order {
		p.order[i] = int32(i)
	}
	p.rng.Shuffle(numPieces, func(a, b int) { p.order[a], p.order[b] = p.order[b], p.order[a] })
	for k, i := range p.order {
		p.pos[i] = int32(k)
	}
	return p
}

// NumPieces is the number of pieces of the torrent.
func (p *Picker) NumPieces() int { return p.numPieces }

// PieceSize is the length of piece i.
func (p *Picker) PieceSize(i int) int64 {
	return min(p.pieceLength, p.total-int64(i)*p.pieceLength)
}

// numBlocks is the number of blocks of piece i.
func (p *Picker) numBlocks(i int) int { return int((p.PieceSize(i) + BlockSize - 1) / BlockSize) }

// blockAt is block j of piece i.
func (p *Picker) blockAt(i, j int) Block {
	begin := int64(j) * BlockSize
	return Block{Piece: uint32(i), Begin: uint32(begin), Length: uint32(min(BlockSize, p.PieceSize(i)-begin))}
}

// blockIndex returns the index of b inside its piece, and false when b is not exactly one of
// the torrent's blocks (a wrong piece, an unaligned begin, a wrong length).
func (p *Picker) blockIndex(b Block) (int, bool) {
	if int64(b.Piece) >= int64(p.numPieces) || b.Begin%BlockSize != 0 {
		return 0, false
	}
	j := int(b.Begin / BlockSize)
	if j >= p.numBlocks(int(b.Piece)) || p.blockAt(int(b.Piece), j) != b {
		return 0, false
	}
	return j, true
}

// lookup returns the partial state of b's piece and b's index in it; ok is false when b is
// not a block of a started piece.
func (p *Picker) lookup(b Block) (ps *partial, j int, ok bool) {
	j, ok = p.blockIndex(b)
	if !ok {
		return nil, 0, false
	}
	ps = p.partOf[b.Piece]
	return ps, j, ps != nil
}

// SetHave records piece i as had (from the resume check, before downloading). It is
// PieceVerified under the name a caller loading state expects.
func (p *Picker) SetHave(i int) { p.PieceVerified(i) }

// Have reports whether piece i is had.
func (p *Picker) Have(i int) bool { return i >= 0 && i < p.numPieces && p.have.has(i) }

// Done reports whether every piece is had.
func (p *Picker) Done() bool { return p.nHave == p.numPieces }

// PieceVerified records piece i as had: its block state is dropped, a web-seed reservation of
// it released, and the peers that had it become less interesting. Out-of-range and repeated
// calls are ignored.
func (p *Picker) PieceVerified(i int) {
	if i < 0 || i >= p.numPieces || p.state[i] == had {
		return
	}
	switch p.state[i] {
	case candidate:
		p.leaveCandidates(i, had)
	case started:
		p.dropPartial(p.partOf[i])
	}
	p.state[i] = had
	p.have.set(i)
	p.nHave++
	for _, pp := range p.peers {
		if !pp.seed && pp.has != nil && pp.has.has(i) {
			pp.want--
		}
	}
}

// PieceFailed records that piece i, with every block received, did not hash right: its blocks
// go back to the pool and it returns the peers that delivered them (some may be gone), for the
// caller's ban counting. A piece of a web-seed run is released; nil is returned for it, as for
// a piece that is not being downloaded. The slice is the caller's.
func (p *Picker) PieceFailed(i int) []*Peer {
	if i < 0 || i >= p.numPieces {
		return nil
	}
	switch p.state[i] {
	case reserved:
		p.enterCandidates(i)
	case started:
		ps := p.partOf[i]
		from := append([]*Peer(nil), ps.from...)
		p.dropPartial(ps)
		p.enterCandidates(i)
		return from
	}
	return nil
}

// startPiece turns candidate i into a started piece first offered to owner.
func (p *Picker) startPiece(i int, owner *Peer) *partial {
	p.leaveCandidates(i, started)
	var ps *partial
	if n := len(p.pool); n > 0 {
		ps, p.pool = p.pool[n-1], p.pool[:n-1]
	} else {
		ps = new(partial)
	}
	nb := p.numBlocks(i)
	if cap(ps.blocks) >= nb {
		ps.blocks = ps.blocks[:nb]
	} else {
		ps.blocks = make([]block, nb)
	}
	ps.index, ps.owner, ps.nFree, ps.nReceived, ps.next = i, owner, nb, 0, 0
	p.freeParts += nb
	p.parts = append(p.parts, ps)
	p.partOf[i] = ps
	return ps
}

// dropPartial forgets ps's block state (the caller sets the piece's new state). Requests still
// outstanding are forgotten too: a late block is then refused by Wants.
func (p *Picker) dropPartial(ps *partial) {
	for j := range ps.blocks {
		b := &ps.blocks[j]
		if b.req != nil {
			b.req.outstanding--
		}
		for _, q := range b.more {
			q.outstanding--
		}
		clear(b.more)
		*b = block{more: b.more[:0]}
	}
	p.freeParts -= ps.nFree
	clear(ps.from)
	ps.from = ps.from[:0]
	ps.owner = nil
	p.partOf[ps.index] = nil
	for k, q := range p.parts {
		if q == ps {
			p.parts = slices.Delete(p.parts, k, k+1)
			break
		}
	}
	p.pool = append(p.pool, ps)
}

// dropIfIdle returns a started piece nobody is working on and nothing was received for to the
// candidates, so that abandoned pieces do not pile up as partials.
func (p *Picker) dropIfIdle(ps *partial) {
	if ps.nReceived == 0 && ps.nFree == len(ps.blocks) {
		i := ps.index
		p.dropPartial(ps)
		p.enterCandidates(i)
	}
}
