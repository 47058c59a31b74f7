package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// fixture is a torrent made from random bytes in a temporary directory.
type fixture struct {
	mi      *metafile.Torrent
	payload []byte
	srcDir  string
}

func newFixture(tb testing.TB, size int, pieceLength int64) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		tb.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(src, "payload.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	made, err := metafile.Make(context.Background(), metafile.MakeOptions{Paths: []string{path}, PieceLength: pieceLength, NoDate: true})
	if err != nil {
		tb.Fatal(err)
	}
	mi, err := metafile.Parse(made.Torrent)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{mi: mi, payload: data, srcDir: src}
}

// seedFiles opens the fixture's payload read-only.
func (f *fixture) seedFiles(tb testing.TB) *storage.Files {
	tb.Helper()
	fs, err := storage.Open(f.mi.Layout, f.srcDir, f.mi.Name, f.mi.Single, storage.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fs.Close() })
	return fs
}

// leechFiles creates an empty payload in a new directory.
func (f *fixture) leechFiles(tb testing.TB) (*storage.Files, string) {
	tb.Helper()
	dir := tb.TempDir()
	fs, err := storage.Open(f.mi.Layout, dir, f.mi.Name, f.mi.Single, storage.OpenOptions{Write: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fs.Close() })
	return fs, dir
}

func (f *fixture) full() wire.Bitfield {
	bf := wire.NewBitfield(f.mi.Layout.NumPieces())
	bf.SetAll()
	return bf
}

func peerID(tag byte) bittorrent.PeerID {
	var id bittorrent.PeerID
	copy(id[:], "-WS0001-")
	for i := 8; i < 20; i++ {
		id[i] = tag
	}
	return id
}

// node is a running Torrent, listening (through Serve) on 127.0.0.1.
type node struct {
	t       *Torrent
	addr    netip.AddrPort
	metrics *Metrics
	reg     *prometheus.Registry
	wire    *wire.Config
}

type nodeOpts struct {
	tag      byte
	enc      wire.Encryption
	maxConns int // Serve's global limit
	serve    func(*ServeConfig)
	tweak    func(*Torrent)
	cfg      func(*Config)
}

// startNode runs a Torrent and a Serve for it until the test ends.
func startNode(tb testing.TB, mi *metafile.Torrent, files *storage.Files, have wire.Bitfield, o nodeOpts) *node {
	tb.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	id := peerID(o.tag)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	var tor *Torrent
	wc := &wire.Config{
		PeerID:     id,
		Reserved:   wire.DefaultReserved,
		Encryption: o.enc,
		Known:      func(ih bittorrent.InfoHash) bool { return ih == bittorrent.InfoHash(mi.InfoHash) },
		InfoHashes: func(yield func(bittorrent.InfoHash) bool) { yield(bittorrent.InfoHash(mi.InfoHash)) },
	}
	cfg := Config{PeerID: id, ListenPort: ap.Port(), Wire: wc, Metrics: m, ChokerSeed: 1}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	tor, err = New(mi, files, have, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if o.tweak != nil {
		o.tweak(tor)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone, serveDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- tor.Run(ctx) }()
	scfg := ServeConfig{MaxConns: o.maxConns, Metrics: m}
	if o.serve != nil {
		o.serve(&scfg)
	}
	go func() {
		serveDone <- Serve(ctx, ln, wc, func(ih bittorrent.InfoHash) *Torrent {
			if ih == tor.InfoHash() {
				return tor
			}
			return nil
		}, scfg)
	}()
	tb.Cleanup(func() {
		cancel()
		for _, ch := range []chan error{runDone, serveDone} {
			select {
			case err := <-ch:
				if err != nil {
					tb.Errorf("node %c stopped with %v", o.tag, err)
				}
			case <-time.After(10 * time.Second):
				tb.Errorf("node %c did not stop within 10 s", o.tag)
			}
		}
	})
	return &node{t: tor, addr: ap, metrics: m, reg: reg, wire: wc}
}

// waitDone waits for t to complete.
func waitDone(tb testing.TB, t *Torrent, timeout time.Duration) {
	tb.Helper()
	select {
	case <-t.Done():
	case <-time.After(timeout):
		tb.Fatalf("download not complete after %v: %+v", timeout, t.Stats())
	}
}

func checkPayload(tb testing.TB, dir string, f *fixture) {
	tb.Helper()
	got, err := os.ReadFile(filepath.Join(dir, f.mi.Name))
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(got, f.payload) {
		tb.Fatalf("downloaded payload differs from the original (%d vs %d bytes)", len(got), len(f.payload))
	}
}

func counter(m *Metrics, vec string, label string) float64 {
	var c prometheus.Counter
	switch vec {
	case "hostile":
		c = m.hostile.WithLabelValues(label)
	case "refused":
		c = m.refused.WithLabelValues(label)
	case "webseed_dropped":
		c = m.webDropped.WithLabelValues(label)
	case "webseed_bytes":
		c = m.webBytes
	default:
		panic(vec)
	}
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}

func waitCounter(tb testing.TB, m *Metrics, vec, label string, atLeast float64) {
	tb.Helper()
	testenv.WaitFor(tb, 10*time.Second, vec+" "+label, func() error {
		if v := counter(m, vec, label); v < atLeast {
			return errors.New("counter at " + formatFloat(v))
		}
		return nil
	})
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
