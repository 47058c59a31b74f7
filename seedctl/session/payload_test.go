package session

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		tb.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// answer requests the first length bytes of piece i and returns the PIECE or REJECT that
// answers it.
func (p *rawPeer) answer(i, length uint32) *wire.Message {
	p.tb.Helper()
	p.w.Request(i, 0, length)
	p.flush()
	for {
		m, err := p.next(5 * time.Second)
		if err != nil {
			p.tb.Fatalf("request of piece %d: %v", i, err)
		}
		if (m.ID == wire.Piece || m.ID == wire.Reject) && m.Index == i {
			return m
		}
	}
}

// waitSettled waits until the seed holds have pieces, hashes nothing and has no file it
// must look at again (storage.Files.Racy): what it serves then no longer moves.
func waitSettled(tb testing.TB, n *node, have int) {
	tb.Helper()
	testenv.WaitFor(tb, 10*time.Second, "payload settled", func() error {
		if st := n.t.Stats(); st.Have != have || st.Rechecking || n.t.pw.files.Racy() {
			return fmt.Errorf("stats %+v, racy %v", st, n.t.pw.files.Racy())
		}
		return nil
	})
}

// TestPayloadChangedWhileSeeding edits a seed's file in place (the admin's cp over it):
// the seed must stop serving the file's pieces, hash them again, serve again those that
// still match (with a HAVE), REJECT the changed one, count and report it.
func TestPayloadChangedWhileSeeding(t *testing.T) {
	const piece = 16 << 10
	f := newFixture(t, 6*piece, piece)
	// No polling: the change is found when PayloadChanged says so (as a file notification
	// would), so the test decides when.
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		cfg: func(c *Config) { c.PayloadCheckInterval = -1 }})
	p := dialRaw(t, seed.addr, f.mi, 'c', wire.DefaultReserved, wire.Off)
	p.expect(wire.HaveAll, 5*time.Second)
	p.w.Interested()
	p.flush()
	p.expect(wire.Unchoke, 5*time.Second)
	block := func(i int) []byte { return f.payload[i*piece : (i+1)*piece] }
	get := func(i int) *wire.Message { return p.answer(uint32(i), piece) }
	if m := get(2); m.ID != wire.Piece || !bytes.Equal(m.Block, block(2)) {
		t.Fatalf("before the change: %v", m.ID)
	}

	path := filepath.Join(f.srcDir, f.mi.Name)
	changed := bytes.Clone(f.payload)
	changed[2*piece+5] ^= 0xff
	if err := os.WriteFile(path, changed, 0o644); err != nil { // truncate and write, as cp
		t.Fatal(err)
	}
	seed.t.PayloadChanged()

	// The file may be hashed twice: once at once, once more when it has been quiet for
	// storage's racy window (a write in the same clock tick would not show).
	pm := &seed.metrics.payload
	testenv.WaitFor(t, 10*time.Second, "re-check of the changed file", func() error {
		good, bad := counterValue(t, pm.good), counterValue(t, pm.bad)
		if good < 5 || bad < 1 {
			return fmt.Errorf("rechecked good %v bad %v", good, bad)
		}
		return nil
	})
	if c := counterValue(t, pm.changesBy[storage.Modified]) + counterValue(t, pm.changesBy[storage.Truncated]); c < 1 {
		t.Fatalf("payload changes counted: %v", c)
	}
	if c := counterValue(t, pm.invalidated); c < 6 {
		t.Fatalf("pieces invalidated: %v, want at least 6", c)
	}
	waitSettled(t, seed, 5)
	haves := map[uint32]bool{}
	for len(haves) < 5 {
		m := p.expect(wire.Have, 5*time.Second)
		if m.Index == 2 {
			t.Fatal("HAVE for the changed piece")
		}
		haves[m.Index] = true
	}
	if m := get(2); m.ID != wire.Reject {
		t.Fatalf("changed piece: %v, want REJECT", m.ID)
	}
	if m := get(3); m.ID != wire.Piece || !bytes.Equal(m.Block, block(3)) {
		t.Fatalf("unchanged piece after the re-check: %v", m.ID)
	}
	if st := seed.t.Stats(); st.Left != piece {
		t.Fatalf("stats %+v: want one piece left", st)
	}

	// The admin puts the right file back: the piece is served again.
	if err := os.WriteFile(path+".tmp", f.payload, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	seed.t.PayloadChanged()
	if m := p.expect(wire.Have, 10*time.Second); m.Index != 2 {
		// The whole file is hashed again: its first good piece is announced first.
		for m.Index != 2 {
			m = p.expect(wire.Have, 10*time.Second)
		}
	}
	waitSettled(t, seed, 6)
	if c := counterValue(t, pm.changesBy[storage.Replaced]); c != 1 {
		t.Fatalf("replaced counted %v", c)
	}
	if m := get(2); m.ID != wire.Piece || !bytes.Equal(m.Block, block(2)) {
		t.Fatalf("restored piece: %v", m.ID)
	}
}

// TestPayloadTruncatedWhileSeeding: a file cut short is found by the poll (no
// notification), and its missing pieces are rejected rather than the connection reset.
func TestPayloadTruncatedWhileSeeding(t *testing.T) {
	const piece = 16 << 10
	f := newFixture(t, 4*piece, piece)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: wire.Off,
		cfg: func(c *Config) { c.PayloadCheckInterval = time.Millisecond }})
	p := dialRaw(t, seed.addr, f.mi, 'c', wire.DefaultReserved, wire.Off)
	p.expect(wire.HaveAll, 5*time.Second)
	p.w.Interested()
	p.flush()
	p.expect(wire.Unchoke, 5*time.Second)
	if err := os.Truncate(filepath.Join(f.srcDir, f.mi.Name), 2*piece); err != nil {
		t.Fatal(err)
	}
	pm := &seed.metrics.payload
	testenv.WaitFor(t, 10*time.Second, "re-check of the truncated file", func() error {
		if good, bad := counterValue(t, pm.good), counterValue(t, pm.bad); good < 2 || bad < 2 {
			return fmt.Errorf("rechecked good %v bad %v", good, bad)
		}
		return nil
	})
	if c := counterValue(t, pm.changesBy[storage.Truncated]); c < 1 {
		t.Fatalf("truncations counted %v", c)
	}
	waitSettled(t, seed, 2)
	if m := p.answer(3, piece); m.ID != wire.Reject {
		t.Fatalf("piece past the end of the truncated file: %v, want REJECT", m.ID)
	}
	if m := p.answer(1, piece); m.ID != wire.Piece || !bytes.Equal(m.Block, f.payload[piece:2*piece]) {
		t.Fatalf("piece before the cut: %v", m.ID)
	}
}

// TestDropRequests: requests queued for pieces a payload change took away are dropped; a
// Fast peer gets a REJECT for each, another a CHOKE and UNCHOKE, which makes it forget
// them (BEP 3) and ask again for what we still have.
func TestDropRequests(t *testing.T) {
	f := newFixture(t, 64<<10, 16<<10)
	tor, err := newTorrent(f.mi, f.seedFiles(t), f.full(), Config{PeerID: peerID('s')})
	if err != nil {
		t.Fatal(err)
	}
	tor.have.clear(1)
	for _, fast := range []bool{true, false} {
		p := &peer{t: tor, fast: fast, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		kept, lost := request{0, 0, 16 << 10}, request{1, 0, 16 << 10}
		p.queue = []request{kept, lost, {1, 16 << 10, 16 << 10}}
		p.dropRequests(tor.have)
		if len(p.queue) != 1 || p.queue[0] != kept {
			t.Fatalf("fast %v: queue after the drop: %v", fast, p.queue)
		}
		switch {
		case fast && (len(p.out) != 2*17 || wire.ID(p.out[4]) != wire.Reject || binary.BigEndian.Uint32(p.out[5:]) != 1):
			t.Fatalf("fast peer: % x, want two REJECTs of piece 1", p.out)
		case !fast && (len(p.out) != 10 || wire.ID(p.out[4]) != wire.Choke || wire.ID(p.out[9]) != wire.Unchoke):
			t.Fatalf("peer without Fast: % x, want CHOKE, UNCHOKE", p.out)
		}
	}
}
