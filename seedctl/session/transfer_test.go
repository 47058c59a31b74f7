package session

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

func testTransfer(t *testing.T, enc wire.Encryption) {
	f := newFixture(t, 3<<20+12345, 64<<10)
	seed := startNode(t, f.mi, f.seedFiles(t), f.full(), nodeOpts{tag: 's', enc: enc})
	lf, dir := f.leechFiles(t)
	leech := startNode(t, f.mi, lf, wire.Bitfield{}, nodeOpts{tag: 'l', enc: enc})
	leech.t.AddPeers([]netip.AddrPort{seed.addr})
	waitDone(t, leech.t, 30*time.Second)
	checkPayload(t, dir, f)
	st := leech.t.Stats()
	if st.Have != f.mi.Layout.NumPieces() || st.Left != 0 || st.Downloaded < int64(len(f.payload)) {
		t.Errorf("leecher stats after completion: %+v", st)
	}
	if got := leech.t.Have(); !got.Full() {
		t.Errorf("Have() has %d of %d pieces", got.Count(), got.Len())
	}
	// The seeder counts a block once its write returns, and the leecher can read (and
	// verify) the block before that: wait for the count rather than read it once.
	testenv.WaitFor(t, 10*time.Second, "the seed to count its upload", func() error {
		if up := seed.t.Stats().Uploaded; up < int64(len(f.payload)) {
			return fmt.Errorf("seed uploaded %d bytes, payload is %d", up, len(f.payload))
		}
		return nil
	})
}

func TestSeedToLeecherPlaintext(t *testing.T) { testTransfer(t, wire.Off) }

func TestSeedToLeecherMSE(t *testing.T) { testTransfer(t, wire.Require) }
