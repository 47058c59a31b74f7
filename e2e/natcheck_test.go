package e2e

// End-to-end tests of the tracker's NAT check (issue 12, item 3 and 6): the built tracker,
// with NAT checking on as README deploys it, and real peers.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// ncPipeline sends one announce per query over one connection to the tracker at base,
// pipelined, each as if forwarded by a proxy for realIP (X-Real-IP from 127.0.0.1, a trusted
// proxy by default), and reads every reply. It returns how many replies were failures.
func ncPipeline(t testing.TB, tp *trackerProc, realIP string, queries []string) (failed int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.Port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(c)
		for _, q := range queries {
			fmt.Fprintf(w, "GET /announce?%s HTTP/1.1\r\nHost: t\r\nX-Real-IP: %s\r\n\r\n", q, realIP)
		}
		werr <- w.Flush()
	}()
	r := bufio.NewReader(c)
	for range queries {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("reading pipelined replies: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("failure reason")) {
			failed++
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	return failed
}

// ncPeers announces as a probe and returns the peers handed out.
func ncPeers(tp *trackerProc, ih [20]byte) ([]string, error) {
	r, err := announce(tp.Announce, announceQuery(ih, "-PROBE0-natcheck-e2e", 1, 1, "compact=1", "numwant=200"))
	if err != nil {
		return nil, err
	}
	return compactPeers(r.Peers)
}

// ncMetric returns the value of the sample line of /metrics that starts with prefix.
func ncMetric(t testing.TB, tp *trackerProc, prefix string) float64 {
	t.Helper()
	body, err := trackerGet(tp.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("/metrics has no %s", prefix)
	return 0
}

// A flood of pipelined announces with fresh peer IDs from one address, at a port that
// accepts and never answers (so each handshake check hangs for its whole timeout), must not
// keep other addresses' new peers hidden: an honest peer at another address is checked
// (a closed port at a third address stays hidden, so it is a check, not a pass) and handed
// out within seconds. In connect mode (the default) the flood's port is reachable, and its
// peers are all handed out after one check.
func TestNATCheckQueueFlood(t *testing.T) {
	for _, mode := range []string{"handshake", "connect"} {
		t.Run(mode, func(t *testing.T) {
			tp := startTracker(t, "--nat_check", "3", "--nat_check_mode", mode, "--nat_check_queue", "1000", "--log_level", "warn", "--logfile", "")
			var ih [20]byte
			copy(ih[:], "natcheck-flood-e2e!!")
			silent := testenv.SilentPeer(t, "127.0.0.1")
			const flood = 2000
			queries := make([]string, flood)
			for i := range queries {
				queries[i] = announceQuery(ih, fmt.Sprintf("-FLOOD0-%012d", i), silent, 1, "compact=1")
			}
			if failed := ncPipeline(t, tp, "127.0.0.1", queries); failed != 0 {
				t.Fatalf("%d of %d flood announces failed", failed, flood)
			}
			const honestID = "-HONEST-natcheck-e2e"
			honest := testenv.HandshakePeer(t, "127.0.0.2", ih, [20]byte([]byte(honestID)))
			l, err := net.Listen("tcp", "127.0.0.3:0")
			if err != nil {
				t.Fatal(err)
			}
			closed := l.Addr().(*net.TCPAddr).Port
			l.Close()
			if ncPipeline(t, tp, "127.0.0.2", []string{announceQuery(ih, honestID, honest, 1, "compact=1")}) != 0 ||
				ncPipeline(t, tp, "127.0.0.3", []string{announceQuery(ih, "-CLOSED-natcheck-e2e", closed, 1, "compact=1")}) != 0 {
				t.Fatal("honest announces refused")
			}
			honestAddr := net.JoinHostPort("127.0.0.2", strconv.Itoa(honest))
			testenv.WaitFor(t, 20*time.Second, "honest peer handed out during the flood", func() error {
				peers, err := ncPeers(tp, ih)
				if err != nil {
					return err
				}
				if !slices.Contains(peers, honestAddr) {
					return fmt.Errorf("%d peers, not %s", len(peers), honestAddr)
				}
				return nil
			})
			testenv.WaitFor(t, 20*time.Second, "closed port checked", func() error {
				if v := ncMetric(t, tp, `webswarm_tracker_nat_checks_total{result="failed"}`); v < 1 {
					return fmt.Errorf("failed checks %v", v)
				}
				return nil
			})
			peers, err := ncPeers(tp, ih)
			if err != nil {
				t.Fatal(err)
			}
			if closedAddr := net.JoinHostPort("127.0.0.3", strconv.Itoa(closed)); slices.Contains(peers, closedAddr) {
				t.Errorf("peer on a closed port %s handed out: it was not checked", closedAddr)
			}
			// The flood's peers are never hidden for want of room: handed out (checked, or
			// unchecked beyond the source's share), and the queue holds at most that share.
			if n := len(peers); n < 200 {
				t.Errorf("%d peers handed out, want numwant 200: the flood's peers are hidden", n)
			}
			if v := ncMetric(t, tp, "webswarm_tracker_nat_check_pending"); v > 8 {
				t.Errorf("%v peers wait for a check; one source may hold --nat_check_per_ip 8", v)
			}
		})
	}
}
