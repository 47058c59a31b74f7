package e2e

// End-to-end tests of the tracker's NAT check (issue 12, item 3 and 6): the built tracker,
// with NAT checking on as README deploys it, and real peers.

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
)

// ncLeechTimeout bounds the download of TestNATCheckDefaultLibtorrent: a liveness bound. With
// the handshake check the download stalls for about a minute (libtorrent's reconnect delay),
// so the failure is this clear timeout rather than a hang.
const ncLeechTimeout = 45 * time.Second

// The recommended deployment: the agent seeds on the tracker's host, NAT check on
// (--nat_check 3, README's default), and a downloader with libtorrent's default settings
// (one connection per IP, as qBittorrent and Deluge). The tracker's connect-back to the
// downloader comes from the seeder's IP; if libtorrent attached it to the torrent it would
// count as a second connection from that IP and drop one (the seeder's, or keep the check's
// and not reconnect to the seeder for a minute). The download must go ahead peer-to-peer.
func TestNATCheckDefaultLibtorrent(t *testing.T) {
	requireLibtorrent(t)
	tp := startTracker(t, append(slices.Clone(trackerTestArgs), "--nat_check", "3")...)
	docroot := t.TempDir()
	pay := writePayload(t, docroot, "nat.bin", 8<<20+13)
	torrent := filepath.Join(docroot, "nat.bin.torrent")
	// No web seed: every byte must come from the agent.
	scSeedctlOK(t, "", "make", filepath.Join(docroot, "nat.bin"), "-t", tp.Announce, "-o", torrent)
	ti := readTorrent(t, torrent)
	state := t.TempDir()
	port := testenv.FreePort(t, "127.0.0.1")
	testenv.Start(t, testenv.Build(t, "./seedctl"), "agent", "--dir", docroot, "--state", state,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--rerequest-interval", "10s")
	agWaitStates(t, state, map[string]string{"nat.bin": "seeding"})
	// The agent passed its own NAT check: the tracker hands it out.
	agentAddr := "127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitFor(t, time.Minute, "tracker handing out the agent", func() error {
		r, err := announce(tp.Announce, announceQuery(ti.InfoHash, "-PROBE0-natcheck-e2e", 1, 1, "compact=1"))
		if err != nil {
			return err
		}
		peers, err := compactPeers(r.Peers)
		if err != nil {
			return err
		}
		if !slices.Contains(peers, agentAddr) {
			return fmt.Errorf("peers %v", peers)
		}
		return nil
	})

	out := t.TempDir()
	ltPort := testenv.FreePort(t, "127.0.0.4")
	args := append(libtorrentArgs(t, "get", torrent, out, "127.0.0.4", ltPort, ncLeechTimeout), "--one-conn-per-ip")
	lt := testenv.Start(t, systemPython, args...)
	waitClient(t, lt, "libtorrent (one connection per IP) get with NAT check on", ncLeechTimeout+30*time.Second)
	sameFile(t, filepath.Join(out, "nat.bin"), pay)
	l, err := agList(t, state)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || l[0].Uploaded < int64(len(pay)) {
		t.Errorf("agent lists %+v; want nat.bin with at least %d bytes uploaded (peer-to-peer)", l, len(pay))
	}
}
