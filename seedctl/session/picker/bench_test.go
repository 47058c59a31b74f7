package picker

import (
	"math/rand/v2"
	"testing"
)

const (
	benchPieces = 10000
	benchPeers  = 50
	benchPlen   = 256 << 10 // 16 blocks
)

// benchSwarm is a Picker of 10,000 pieces with 50 peers holding random halves of them (and
// a seed), as a download in a lively swarm sees it.
func benchSwarm(b *testing.B) (*Picker, []*Peer) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	p := NewSeeded(benchPieces, benchPlen, benchPieces*benchPlen, 3)
	var peers []*Peer
	for k := range benchPeers {
		pp := p.NewPeer()
		if k == 0 {
			p.PeerHaveAll(pp)
		} else {
			bf, _ := randomBitfield(r, benchPieces, 0.5)
			p.PeerBitfield(pp, bf)
		}
		peers = append(peers, pp)
	}
	return p, peers
}

// BenchmarkPick asks each of 50 peers in turn for a 16-block pipeline and gives the blocks
// back (so the state stays the same): the cost of Pick, piece start and return included.
func BenchmarkPick(b *testing.B) {
	p, peers := benchSwarm(b)
	dst := make([]Block, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pp := peers[i%benchPeers]
		dst = p.Pick(pp, 16, false, dst[:0])
		for _, blk := range dst {
			p.Rejected(pp, blk)
		}
	}
}

// BenchmarkDownload is the whole cycle per block: pick, receive, verify when full, with 50
// peers; the torrent is restarted (untimed) when complete.
func BenchmarkDownload(b *testing.B) {
	p, peers := benchSwarm(b)
	dst := make([]Block, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		if p.Done() {
			b.StopTimer()
			p, peers = benchSwarm(b)
			b.StartTimer()
		}
		pp := peers[i%benchPeers]
		dst = p.Pick(pp, 16, false, dst[:0])
		for _, blk := range dst {
			if _, full := p.Received(pp, blk); full {
				p.PieceVerified(int(blk.Piece))
			}
		}
		i += max(len(dst), 1)
	}
}

// BenchmarkPeerHave is one HAVE from one of 50 peers.
func BenchmarkPeerHave(b *testing.B) {
	p, peers := benchSwarm(b)
	pp := peers[1]
	empty := make([]byte, (benchPieces+7)/8)
	p.PeerBitfield(pp, empty)
	order := rand.New(rand.NewPCG(5, 6)).Perm(benchPieces)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % (benchPieces - 1) // never the last: the peer would turn seed
		if k == 0 && i > 0 {
			b.StopTimer()
			p.PeerBitfield(pp, empty)
			b.StartTimer()
		}
		p.PeerHave(pp, order[k])
	}
}

// BenchmarkPeerBitfield is one BITFIELD replacing another (half the bits differ) for one of
// 50 peers, on 10,000 pieces.
func BenchmarkPeerBitfield(b *testing.B) {
	p, peers := benchSwarm(b)
	r := rand.New(rand.NewPCG(7, 8))
	bf1, _ := randomBitfield(r, benchPieces, 0.5)
	bf2, _ := randomBitfield(r, benchPieces, 0.5)
	bfs := [2][]byte{bf1, bf2}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.PeerBitfield(peers[1], bfs[i%2])
	}
}
