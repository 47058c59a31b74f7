package picker

import (
	"slices"
	"testing"
)

// bitfield returns a BITFIELD payload for n pieces with the given pieces set.
func bitfield(n int, pieces ...int) []byte {
	bf := make([]byte, (n+7)/8)
	for _, i := range pieces {
		bf[i/8] |= 0x80 >> (i % 8)
	}
	return bf
}

func pieceSet(bs []Block) []int {
	var s []int
	for _, b := range bs {
		if !slices.Contains(s, int(b.Piece)) {
			s = append(s, int(b.Piece))
		}
	}
	return s
}

func TestGeometry(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pieces      int
		plen, total int64
		lastBlocks  []uint32 // lengths of the last piece's blocks
	}{
		{"one piece shorter than a block", 1, 256 << 10, 1000, []uint32{1000}},
		{"one piece of exactly two blocks", 1, 32 << 10, 32 << 10, []uint32{BlockSize, BlockSize}},
		{"last piece ends mid-block", 3, 64 << 10, 2*(64<<10) + 20000, []uint32{BlockSize, 20000 - BlockSize}},
		{"piece length not a block multiple", 2, 20000, 40000, []uint32{BlockSize, 20000 - BlockSize}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewSeeded(tc.pieces, tc.plen, tc.total, 1)
			seed := p.NewPeer()
			p.PeerHaveAll(seed)
			var got []Block
			got = p.Pick(seed, 1<<20, false, got)
			var sum int64
			for _, b := range got {
				if b.Begin%BlockSize != 0 || b.Length == 0 || b.Length > BlockSize {
					t.Errorf("bad block %+v", b)
				}
				sum += int64(b.Length)
			}
			if sum != tc.total {
				t.Errorf("blocks cover %d bytes, want %d", sum, tc.total)
			}
			var last []uint32
			for _, b := range got {
				if int(b.Piece) == tc.pieces-1 {
					last = append(last, b.Length)
				}
			}
			if !slices.Equal(last, tc.lastBlocks) {
				t.Errorf("last piece's blocks %v, want %v", last, tc.lastBlocks)
			}
			for _, b := range got {
				p.Received(seed, b)
			}
			for i := range tc.pieces {
				p.PieceVerified(i)
			}
			if !p.Done() || p.Interesting(seed) {
				t.Errorf("Done %v Interesting %v after every piece", p.Done(), p.Interesting(seed))
			}
			if more := p.Pick(seed, 10, false, nil); len(more) != 0 {
				t.Errorf("picked %v when done", more)
			}
			checkInvariants(t, p)
		})
	}
}

func TestNewPanicsOnInconsistentArguments(t *testing.T) {
	for _, args := range [][3]int64{{0, 16384, 1}, {2, 16384, 16384}, {1, 16384, 16385}, {1, 0, 1}, {1, 16384, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New%v did not panic", args)
				}
			}()
			New(int(args[0]), args[1], args[2])
		}()
	}
}

// TestManyPieces downloads a 100,000-piece torrent from a seed and a half-seed and checks that
// every block is handed out once, the torrent completes, and availability counting stays
// exact at that size.
func TestManyPieces(t *testing.T) {
	const n = 100000
	p := NewSeeded(n, BlockSize, n*BlockSize-7, 3)
	seed, half := p.NewPeer(), p.NewPeer()
	p.PeerHaveAll(seed)
	even := make([]byte, (n+7)/8)
	for i := range even {
		even[i] = 0xaa
	}
	p.PeerBitfield(half, even)
	if p.avail[0] != 1 || p.avail[1] != 0 || p.seeds != 1 {
		t.Fatalf("availability of pieces 0, 1: %d %d, seeds %d", p.avail[0], p.avail[1], p.seeds)
	}
	seen := make([]bool, n)
	var buf []Block
	for rounds := 0; !p.Done(); rounds++ {
		if rounds > n {
			t.Fatal("no progress")
		}
		for _, pp := range []*Peer{seed, half} {
			buf = p.Pick(pp, 64, false, buf[:0])
			for _, b := range buf {
				if seen[b.Piece] {
					t.Fatalf("piece %d handed out twice", b.Piece)
				}
				seen[b.Piece] = true
				if pp == half && b.Piece%2 != 0 {
					t.Fatalf("half-seed asked for odd piece %d", b.Piece)
				}
				if _, full := p.Received(pp, b); !full {
					t.Fatalf("one-block piece %d not full", b.Piece)
				}
				p.PieceVerified(int(b.Piece))
			}
		}
	}
	if last := p.blockAt(n-1, 0); last.Length != BlockSize-7 {
		t.Errorf("last block %+v", last)
	}
	checkInvariants(t, p)
}

// TestBitfieldReplaces: a BITFIELD after HAVEs (or after HAVE ALL) replaces the set, it does
// not add to it; a full one makes a seed.
func TestBitfieldReplaces(t *testing.T) {
	const n = 20
	p := NewSeeded(n, BlockSize, n*BlockSize, 1)
	pp := p.NewPeer()
	p.PeerHave(pp, 3)
	p.PeerHave(pp, 4)
	p.PeerBitfield(pp, bitfield(n, 4, 5, 19))
	for i := range n {
		if want := i == 4 || i == 5 || i == 19; p.PeerHas(pp, i) != want || p.avail[i] != map[bool]int32{true: 1}[want] {
			t.Errorf("piece %d: has %v avail %d, want %v", i, p.PeerHas(pp, i), p.avail[i], want)
		}
	}
	// A full bitfield: counted as one seed, nothing per piece.
	p.PeerBitfield(pp, bitfield(n, seq(n)...))
	if !pp.seed || p.seeds != 1 || p.avail[4] != 0 {
		t.Errorf("full bitfield: seed %v seeds %d avail %d", pp.seed, p.seeds, p.avail[4])
	}
	// A seed's later, smaller bitfield (aria2 does this after it starts over) replaces it too.
	p.PeerBitfield(pp, bitfield(n, 7))
	if pp.seed || p.seeds != 0 || !p.PeerHas(pp, 7) || p.PeerHas(pp, 4) || p.avail[7] != 1 {
		t.Errorf("after shrinking: seed %v seeds %d", pp.seed, p.seeds)
	}
	// An empty one clears everything; a short or dirty one adds nothing past the end.
	p.PeerBitfield(pp, nil)
	if p.Interesting(pp) || pp.count != 0 {
		t.Errorf("empty bitfield left %d pieces", pp.count)
	}
	p.PeerBitfield(pp, []byte{0xff, 0xff, 0xff, 0xff, 0xff})
	if !pp.seed {
		t.Errorf("bitfield with all %d pieces (and spare bits) did not make a seed", n)
	}
	checkInvariants(t, p)
	// HAVEs that complete the set make a seed as well.
	q := p.NewPeer()
	for i := range n {
		p.PeerHave(q, i)
	}
	if !q.seed || p.seeds != 2 {
		t.Errorf("HAVEs of every piece: seed %v, seeds %d", q.seed, p.seeds)
	}
	checkInvariants(t, p)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestRarestFirst: a piece one peer has is taken before pieces many have, and a seed's
// presence changes nothing of that order.
func TestRarestFirst(t *testing.T) {
	const n = 50
	p := NewSeeded(n, BlockSize, n*BlockSize, 9)
	var others []*Peer
	for range 3 {
		q := p.NewPeer()
		p.PeerBitfield(q, bitfield(n, seq(40)...)) // pieces 0..39: availability 3 (+1)
		others = append(others, q)
	}
	s := p.NewPeer()
	p.PeerHaveAll(s)
	pp := p.NewPeer()
	p.PeerBitfield(pp, bitfield(n, 10, 20, 45)) // 45: only pp (and the seed)
	got := pieceSet(p.Pick(pp, 1, false, nil))
	if !slices.Equal(got, []int{45}) {
		t.Errorf("picked %v, want the rarest [45]", got)
	}
	// The seed picks the pieces nobody but seeds has (40..49 except 45), before any other.
	got = pieceSet(p.Pick(s, 9, false, nil))
	for _, i := range got {
		if i < 40 || i == 45 {
			t.Errorf("seed picked %d before the pieces only seeds have: %v", i, got)
		}
	}
	_ = others
	checkInvariants(t, p)
}

// TestTieBreakRandom: equal pieces are taken in a random order that depends on the seed only.
func TestTieBreakRandom(t *testing.T) {
	const n = 1000
	first := func(seed uint64) []int {
		p := NewSeeded(n, BlockSize, n*BlockSize, seed)
		pp := p.NewPeer()
		p.PeerBitfield(pp, bitfield(n, seq(n-1)...)) // same availability for all but one
		return pieceSet(p.Pick(pp, 20, false, nil))
	}
	a, b, c := first(1), first(1), first(2)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different order: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds, same order %v", a)
	}
	if slices.IsSorted(a) {
		t.Errorf("tie-break is index order: %v", a)
	}
	// Across seeds the first pick spreads over many pieces.
	firsts := map[int]bool{}
	for s := range uint64(50) {
		firsts[first(s)[0]] = true
	}
	if len(firsts) < 30 {
		t.Errorf("50 seeds chose only %d distinct first pieces", len(firsts))
	}
}

// TestStrictPriority: started pieces are finished before anything new, pp's own first.
func TestStrictPriority(t *testing.T) {
	const n = 10
	plen := int64(4 * BlockSize)
	p := NewSeeded(n, plen, n*plen, 4)
	a, b := p.NewPeer(), p.NewPeer()
	p.PeerHaveAll(a)
	p.PeerHaveAll(b)
	ga := p.Pick(a, 2, false, nil) // a starts piece X: 2 of 4 blocks
	gb := p.Pick(b, 3, false, nil) // b must finish X first (2 blocks), then starts Y (1 block)
	x := ga[0].Piece
	if gb[0].Piece != x || gb[1].Piece != x || gb[2].Piece == x {
		t.Fatalf("b picked %v after a started piece %d", gb, x)
	}
	y := gb[2].Piece
	// A third peer started nothing: it finishes the oldest started piece with free blocks (y).
	// But a, whose own piece x is fully requested, also gets y's blocks, not a new piece.
	ga = p.Pick(a, 3, false, ga[:0])
	if len(ga) != 3 || ga[0].Piece != y || ga[1].Piece != y || ga[2].Piece != y {
		t.Fatalf("a picked %v, want the rest of piece %d", ga, y)
	}
	// Rejected blocks of y go back; b (the owner) is offered them before its new pieces.
	p.Rejected(a, ga[0])
	gb = p.Pick(b, 1, false, gb[:0])
	if gb[0] != ga[0] {
		t.Errorf("b got %v, want the rejected block %v", gb[0], ga[0])
	}
	checkInvariants(t, p)
}

// TestOwnPiecePreferred: among started pieces with free blocks, a peer continues its own;
// a peer that started none takes the oldest.
func TestOwnPiecePreferred(t *testing.T) {
	plen := int64(8 * BlockSize)
	p := NewSeeded(4, plen, 4*plen, 5)
	a, b, c := p.NewPeer(), p.NewPeer(), p.NewPeer()
	for _, q := range []*Peer{a, b, c} {
		p.PeerHaveAll(q)
	}
	pa := p.Pick(a, 1, false, nil)[0].Piece
	gb := p.Pick(b, 8, false, nil) // 7 blocks of a's piece, then 1 of a new one, b's own
	pb := gb[7].Piece
	if pb == pa || gb[6].Piece != pa {
		t.Fatalf("b picked %v", gb)
	}
	for _, blk := range gb[:7] {
		p.Rejected(b, blk)
	}
	if got := p.Pick(b, 1, false, nil)[0].Piece; got != pb {
		t.Errorf("b got piece %d, want its own %d", got, pb)
	}
	if got := p.Pick(a, 1, false, nil)[0].Piece; got != pa {
		t.Errorf("a got piece %d, want its own %d", got, pa)
	}
	if got := p.Pick(c, 1, false, nil)[0].Piece; got != pa {
		t.Errorf("c got piece %d, want the oldest started %d", got, pa)
	}
	checkInvariants(t, p)
}

func TestAllowedFastOnly(t *testing.T) {
	const n = 30
	plen := int64(2 * BlockSize)
	p := NewSeeded(n, plen, n*plen, 6)
	other, pp := p.NewPeer(), p.NewPeer()
	p.PeerHaveAll(other)
	p.PeerBitfield(pp, bitfield(n, 3, 5, 7, 9))
	p.SetAllowedFast(pp, []uint32{5, 9, 11, 5, 1 << 30}) // 11: pp lacks it; 1<<30: out of range
	started := p.Pick(other, 1, false, nil)[0].Piece     // a started piece pp may not fetch
	got := p.Pick(pp, 100, true, nil)
	for _, b := range got {
		if b.Piece != 5 && b.Piece != 9 {
			t.Errorf("choked peer asked for piece %d outside its allowed-fast set", b.Piece)
		}
	}
	if len(got) != 4 {
		t.Errorf("got %d blocks of pieces 5 and 9, want 4", len(got))
	}
	if slices.Contains(pieceSet(got), int(started)) && started != 5 && started != 9 {
		t.Errorf("took the started piece %d", started)
	}
	if more := p.Pick(pp, 100, true, nil); len(more) != 0 {
		t.Errorf("allowed-fast pieces exhausted, still picked %v", more)
	}
	// Unchoked, it gets its other pieces.
	for _, b := range p.Pick(pp, 100, false, nil) {
		if b.Piece != 3 && b.Piece != 7 && b.Piece != started {
			t.Errorf("unchoked pick of piece %d pp lacks", b.Piece)
		}
	}
	checkInvariants(t, p)
}

func TestEndgame(t *testing.T) {
	plen := int64(3 * BlockSize)
	p := NewSeeded(2, plen, 2*plen, 7)
	a, b, c := p.NewPeer(), p.NewPeer(), p.NewPeer()
	for _, q := range []*Peer{a, b, c} {
		p.PeerHaveAll(q)
	}
	ga := p.Pick(a, 4, false, nil)
	if len(ga) != 4 {
		t.Fatalf("a got %d blocks", len(ga))
	}
	gb := p.Pick(b, 10, false, nil)
	// b: the 2 free blocks, then (endgame) duplicates of a's 4.
	if len(gb) != 6 {
		t.Fatalf("b got %d blocks, want 2 free + 4 duplicates: %v", len(gb), gb)
	}
	for _, blk := range gb[2:] {
		if !slices.Contains(ga, blk) {
			t.Errorf("endgame duplicate %v is not outstanding at a", blk)
		}
	}
	if again := p.Pick(b, 10, false, nil); len(again) != 0 {
		t.Errorf("b was asked twice for %v", again)
	}
	// c duplicates the blocks requested once (b's 2) before those requested twice.
	gc := p.Pick(c, 2, false, nil)
	if !slices.Equal(gc, gb[:2]) {
		t.Errorf("c got %v, want the once-requested %v", gc, gb[:2])
	}
	if p.Outstanding(a) != 4 || p.Outstanding(b) != 6 || p.Outstanding(c) != 2 {
		t.Errorf("outstanding a %d b %d c %d", p.Outstanding(a), p.Outstanding(b), p.Outstanding(c))
	}
	checkInvariants(t, p)
	// b delivers a block also outstanding at a and c: CANCEL goes to them.
	cancel, _ := p.Received(b, gb[0])
	if len(cancel) != 1 || cancel[0] != c {
		t.Errorf("cancel %v, want [c]", cancel)
	}
	cancel, _ = p.Received(b, ga[0])
	if len(cancel) != 1 || cancel[0] != a {
		t.Errorf("cancel %v, want [a]", cancel)
	}
	// A duplicate delivery is not wanted and cancels nothing.
	if p.Wants(ga[0]) {
		t.Error("received block still wanted")
	}
	if cancel, full := p.Received(a, ga[0]); cancel != nil || full {
		t.Errorf("duplicate: cancel %v full %v", cancel, full)
	}
	checkInvariants(t, p)
}

// TestNoEarlyEndgame: a peer whose pieces are all requested gets no duplicates while other
// peers still have pieces nobody requested.
func TestNoEarlyEndgame(t *testing.T) {
	plen := int64(2 * BlockSize)
	p := NewSeeded(3, plen, 3*plen, 7)
	a, b, c := p.NewPeer(), p.NewPeer(), p.NewPeer()
	p.PeerBitfield(a, bitfield(3, 0))
	p.PeerBitfield(b, bitfield(3, 0))
	p.PeerBitfield(c, bitfield(3, 1))
	if got := p.Pick(a, 10, false, nil); len(got) != 2 {
		t.Fatalf("a got %v", got)
	}
	if got := p.Pick(b, 10, false, nil); len(got) != 0 {
		t.Errorf("b got duplicates %v while piece 1 is unrequested", got)
	}
	p.Pick(c, 10, false, nil)
	// Piece 2 nobody has: it does not hold endgame off.
	if got := p.Pick(b, 10, false, nil); len(got) != 2 {
		t.Errorf("b got %v, want the 2 duplicates of piece 0", got)
	}
}

func TestPieceFailedReturnsContributors(t *testing.T) {
	plen := int64(2 * BlockSize)
	p := NewSeeded(1, plen, plen, 8)
	a, b := p.NewPeer(), p.NewPeer()
	p.PeerHaveAll(a)
	p.PeerHaveAll(b)
	ba := p.Pick(a, 1, false, nil)[0]
	bb := p.Pick(b, 1, false, nil)[0]
	if _, full := p.Received(a, ba); full {
		t.Fatal("full after one of two blocks")
	}
	if _, full := p.Received(b, bb); !full {
		t.Fatal("not full after both blocks")
	}
	from := p.PieceFailed(0)
	if len(from) != 2 || !slices.Contains(from, a) || !slices.Contains(from, b) {
		t.Errorf("PieceFailed returned %v, want a and b", from)
	}
	if p.Have(0) || p.Done() {
		t.Error("failed piece counted as had")
	}
	// Every block is back in the pool, for anyone.
	if got := p.Pick(a, 10, false, nil); len(got) != 2 {
		t.Errorf("after failure a picks %v", got)
	}
	if p.PieceFailed(0) != nil {
		t.Error("a piece without received blocks reported contributors")
	}
	checkInvariants(t, p)
}

func TestRejectCancelGone(t *testing.T) {
	plen := int64(4 * BlockSize)
	p := NewSeeded(3, plen, 3*plen, 9)
	a, b := p.NewPeer(), p.NewPeer()
	p.PeerBitfield(a, bitfield(3, 0, 1, 2))
	p.PeerHaveAll(b)
	ga := p.Pick(a, 12, false, nil)
	if len(ga) != 12 || p.Outstanding(a) != 12 {
		t.Fatalf("a got %d blocks, %d outstanding", len(ga), p.Outstanding(a))
	}
	p.Received(a, ga[0])
	p.Rejected(a, ga[1])
	p.Cancelled(a, ga[2])
	p.Rejected(b, ga[3]) // not outstanding at b: ignored
	if p.Outstanding(a) != 9 {
		t.Errorf("a has %d outstanding, want 9", p.Outstanding(a))
	}
	gb := p.Pick(b, 2, false, nil)
	if !slices.Equal(gb, ga[1:3]) {
		t.Errorf("b got %v, want the returned %v", gb, ga[1:3])
	}
	p.PeerGone(a)
	if p.Outstanding(a) != 0 || p.seeds != 1 || p.avail[0] != 0 {
		t.Errorf("after a left: outstanding %d seeds %d avail %d", p.Outstanding(a), p.seeds, p.avail[0])
	}
	// a's blocks are free again (not endgame duplicates): b gets each exactly once.
	rest := p.Pick(b, 100, false, nil)
	if len(rest) != 9 {
		t.Errorf("b got %d blocks after a left, want 9", len(rest))
	}
	if p.Pick(a, 10, false, nil) != nil || p.PeerHas(a, 0) || p.Interesting(a) {
		t.Error("a gone peer still picks")
	}
	p.PeerHave(a, 1) // calls with a gone peer are no-ops
	p.PeerGone(a)
	checkInvariants(t, p)
	// A piece whose only requester left and nothing arrived goes back to the candidates.
	q := NewSeeded(2, plen, 2*plen, 1)
	c := q.NewPeer()
	q.PeerHaveAll(c)
	q.Pick(c, 1, false, nil)
	q.PeerGone(c)
	if len(q.parts) != 0 || q.start[0] != 0 {
		t.Errorf("abandoned piece kept started: %d partials", len(q.parts))
	}
}

// TestHostileBlocks: blocks no request could produce are refused without effect.
func TestHostileBlocks(t *testing.T) {
	plen := int64(2*BlockSize + 100)
	p := NewSeeded(2, plen, 2*plen-50, 10)
	a := p.NewPeer()
	p.PeerHaveAll(a)
	got := p.Pick(a, 2, false, nil)
	for _, b := range []Block{
		{Piece: 2, Begin: 0, Length: BlockSize},                // no such piece
		{Piece: 1<<32 - 1, Begin: 0, Length: BlockSize},        // far out
		{Piece: got[0].Piece, Begin: 1, Length: BlockSize},     // unaligned
		{Piece: got[0].Piece, Begin: 0, Length: BlockSize - 1}, // wrong length
		{Piece: got[0].Piece, Begin: 0, Length: 1 << 31},       // huge
		{Piece: got[0].Piece, Begin: 3 * BlockSize, Length: 1}, // past the piece
		{Piece: 1 - got[0].Piece, Begin: 0, Length: BlockSize}, // a piece not started
	} {
		if p.Wants(b) {
			t.Errorf("%+v wanted", b)
		}
		if c, full := p.Received(a, b); c != nil || full {
			t.Errorf("%+v accepted", b)
		}
		p.Rejected(a, b)
	}
	p.PeerHave(a, -1)
	p.PeerHave(a, 2)
	p.PieceVerified(-1)
	p.PieceVerified(5)
	if p.PieceFailed(7) != nil || p.Have(-1) || p.Have(2) {
		t.Error("out-of-range index had an effect")
	}
	if p.Outstanding(a) != 2 {
		t.Errorf("outstanding %d, want 2", p.Outstanding(a))
	}
	checkInvariants(t, p)
}

func TestPickRun(t *testing.T) {
	const n = 20
	p := NewSeeded(n, BlockSize, n*BlockSize, 11)
	p.SetHave(0)
	p.SetHave(1)
	a := p.NewPeer()
	p.PeerBitfield(a, bitfield(n, 5))
	if got := pieceSet(p.Pick(a, 1, false, nil)); !slices.Equal(got, []int{5}) {
		t.Fatalf("a picked %v", got)
	}
	first, count, ok := p.PickRun(4)
	if !ok || first != 2 || count != 3 {
		t.Errorf("run %d+%d %v, want 2+3 (stops before started piece 5)", first, count, ok)
	}
	first, count, _ = p.PickRun(4)
	if first != 6 || count != 4 {
		t.Errorf("second run %d+%d, want 6+4", first, count)
	}
	// Peers never get reserved pieces.
	s := p.NewPeer()
	p.PeerHaveAll(s)
	for _, b := range p.Pick(s, 100, false, nil) {
		if b.Piece >= 2 && b.Piece < 5 || b.Piece >= 6 && b.Piece < 10 {
			t.Errorf("peer got reserved piece %d", b.Piece)
		}
	}
	if _, _, ok := p.PickRun(4); ok {
		t.Error("run found with every piece taken")
	}
	// The web seed delivered 2 and 3 (3 failing), gave up on 4.
	p.PieceVerified(2)
	if p.PieceFailed(3) != nil {
		t.Error("a web-seed piece's failure named peers")
	}
	p.RunFailed(2, 3)
	p.RunDone(6, 4)
	first, count, ok = p.PickRun(10)
	if !ok || first != 3 || count != 2 {
		t.Errorf("after release: run %d+%d %v, want 3+2", first, count, ok)
	}
	checkInvariants(t, p)
	if _, _, ok := p.PickRun(0); ok {
		t.Error("PickRun(0) reserved something")
	}
}
