package session

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

var errNotYet = errors.New("not yet")

// TestEndgameDroppedCopyIsAskedAgain: in endgame a block is requested from two seeds. The
// first one's copy is being read (its reader holds the block's claim) when the second one's
// whole copy arrives, which is dropped; then the first seed's connection dies mid-block. The
// block must be requested from the second seed again — it was once left "outstanding" there
// for good, and the download sat on its last blocks until that peer went away.
func TestEndgameDroppedCopyIsAskedAgain(t *testing.T) {
	f := newFixture(t, 16<<10, 16<<10) // one piece of one block
	files, dir := f.leechFiles(t)
	l := startNode(t, f.mi, files, wire.Bitfield{}, nodeOpts{tag: 'l', enc: wire.Off})
	block := f.payload

	seed := func(tag byte) *rawPeer {
		p := dialRaw(t, l.addr, f.mi, tag, wire.DefaultReserved, wire.Off)
		p.w.HaveAll()
		p.w.Unchoke()
		p.flush()
		m := p.expect(wire.Request, 5*time.Second)
		if m.Index != 0 || m.Begin != 0 || m.Length != 16<<10 {
			t.Fatalf("seed %c: request %d/%d/%d", tag, m.Index, m.Begin, m.Length)
		}
		return p
	}
	s1 := seed('1')
	s2 := seed('2') // endgame: the one block, outstanding at s1, is asked of s2 as well

	// s1 sends the message head and half the block: l's reader claims the block.
	head := binary.BigEndian.AppendUint32(nil, uint32(9+len(block)))
	head = append(head, byte(wire.Piece), 0, 0, 0, 0, 0, 0, 0, 0)
	s1.send(append(head, block[:len(block)/2]...))
	testenv.WaitFor(t, 5*time.Second, "s1's block claimed", func() error {
		c := l.t.dlState
		c.mu.Lock()
		defer c.mu.Unlock()
		if pb := c.pieces[0]; pb != nil && pb.state[0] == blockReading {
			return nil
		}
		return errNotYet
	})
	// s2's whole copy comes meanwhile and is dropped.
	s2.w.Piece(0, 0, block)
	s2.flush()
	testenv.WaitFor(t, 5*time.Second, "s2's copy read", func() error {
		if l.t.downloaded.Load() >= int64(len(block)) {
			return nil
		}
		return errNotYet
	})
	// s1 goes away mid-block: its claim is released, and the block must go to s2 again.
	s1.conn.Close()
	m := s2.expect(wire.Request, 10*time.Second)
	if m.Index != 0 || m.Begin != 0 {
		t.Fatalf("request %d/%d", m.Index, m.Begin)
	}
	s2.w.Piece(0, 0, block)
	s2.flush()
	waitDone(t, l.t, 10*time.Second)
	checkPayload(t, dir, f)
}
