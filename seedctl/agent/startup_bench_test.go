package agent

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// startupCorpus makes n torrents of 64 KiB (16 KiB pieces) in the publish layout under dir,
// each with a clean resume record in state, as a clean shutdown leaves them (what
// bench/agent/gen makes for scripts/bench-agent.sh).
func startupCorpus(tb testing.TB, n int, dir, state, trackerURL string) {
	tb.Helper()
	b := make([]byte, 64<<10)
	for i := range n {
		for off := 0; off+8 <= len(b); off += 4096 {
			binary.LittleEndian.PutUint64(b[off:], uint64(i)<<20|uint64(off))
		}
		p := filepath.Join(dir, fmt.Sprintf("t%06d.bin", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		o := metafile.MakeOptions{Paths: []string{p}, PieceLength: 16 << 10, NoDate: true, Workers: 1}
		if trackerURL != "" {
			o.Trackers = [][]string{{trackerURL}}
		}
		m, err := metafile.Make(context.Background(), o)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p+".torrent", m.Torrent, 0o644); err != nil {
			tb.Fatal(err)
		}
		mi, err := metafile.Parse(m.Torrent)
		if err != nil {
			tb.Fatal(err)
		}
		f, err := storage.Open(mi.Layout, dir, mi.Name, mi.Single, storage.OpenOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		stamps, err := f.Stat()
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		have := wire.NewBitfield(mi.Layout.NumPieces())
		for k := range have.Len() {
			have.Set(k)
		}
		rec := resume.Record{InfoHash: mi.InfoHash, Have: have.Bytes(), Files: stamps, Clean: true}
		if err := rec.Save(resume.PathFor(state, mi.InfoHash)); err != nil {
			tb.Fatal(err)
		}
	}
}

// seedingCount is the number of torrents seeding.
func (a *Agent) seedingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seeding
}

// BenchmarkStartup measures what scripts/bench-agent.sh measures with the built binary, in
// process: from New to every one of 1,000 torrents seeding, trusting clean resume records
// (nothing hashed), with a tracker on loopback taking the start-up announces.
func BenchmarkStartup(b *testing.B) {
	const n = 1000
	tr := startTracker(b)
	dir, state := b.TempDir(), b.TempDir()
	startupCorpus(b, n, dir, state, tr.URL)
	b.ResetTimer()
	for range b.N {
		cfg := testConfig(b, dir)
		cfg.StateDir = state
		cfg.NoWatch = true
		cfg.AnnounceRate = 0 // the default, as the agent runs
		a, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		deadline := time.Now().Add(time.Minute)
		for a.seedingCount() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d seeding after a minute", a.seedingCount(), n)
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		if h := a.checksHashed.Load(); h != 0 {
			b.Fatalf("%d torrents hashed; the clean records should have been trusted", h)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
