package picker

import "testing"

// FuzzPicker drives a Picker with any sequence of calls a hostile or confused peer could
// cause (indexes and blocks out of range, unrequested blocks, repeated events, gone peers
// used again) and checks that it never panics and keeps its invariants.
func FuzzPicker(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Add([]byte{0, 0, 3, 255, 255, 7, 1, 7, 1, 8, 0, 9, 0, 10, 0, 12, 0})
	f.Add([]byte{1, 0, 2, 5, 0, 6, 2, 7, 0, 7, 1, 8, 0, 8, 1, 11, 3, 13, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const n = 13
		plen := int64(3 * BlockSize)
		p := NewSeeded(n, plen, n*plen-1000, 1)
		peers := []*Peer{p.NewPeer()}
		var got []Block
		arg := func(k int) int {
			if k < len(ops) {
				return int(ops[k])
			}
			return 0
		}
		for k := 0; k < len(ops); k += 2 {
			pp := peers[arg(k+1)%len(peers)]
			x := arg(k + 1)
			blk := Block{Piece: uint32(x % (n + 2)), Begin: uint32(x/16) * BlockSize / uint32(1+x%3), Length: BlockSize}
			if len(got) > 0 && x%2 == 0 {
				blk = got[x%len(got)]
			}
			switch ops[k] % 16 {
			case 0:
				peers = append(peers, p.NewPeer())
			case 1:
				p.PeerHave(pp, x-3)
			case 2:
				p.PeerBitfield(pp, ops[k:min(len(ops), k+3)])
			case 3:
				p.PeerHaveAll(pp)
			case 4:
				p.PeerGone(pp)
			case 5:
				p.SetAllowedFast(pp, []uint32{uint32(x), uint32(x / 3), 1 << 31})
			case 6, 7:
				got = p.Pick(pp, x%20, ops[k]%2 == 0, got[:0])
			case 8:
				if _, full := p.Received(pp, blk); full && x%3 == 0 {
					p.PieceFailed(int(blk.Piece))
				}
			case 9:
				p.Rejected(pp, blk)
			case 10:
				p.Cancelled(pp, blk)
			case 11:
				p.PieceVerified(x - 2)
			case 12:
				p.PieceFailed(x - 2)
			case 13:
				if first, count, ok := p.PickRun(x % 5); ok && x%2 == 0 {
					p.RunFailed(first, count)
				}
			case 14:
				p.RunDone(x-5, x%7)
			case 15:
				p.Wants(blk)
			}
			if err := invariants(p); err != nil {
				t.Fatalf("op %d (%d %d): %v", k/2, ops[k], x, err)
			}
		}
	})
}
