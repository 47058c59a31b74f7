// Command gen makes N small torrents for measuring seedctl agent's start-up: N payloads of
// SIZE bytes (distinct content) beside their .torrent files in DIR (the publish layout),
// announcing to TRACKER, and — unless -no-resume — a clean resume record for each in STATE,
// as a clean shutdown of the agent leaves them. The same files serve libtorrent's seed mode
// in scripts/bench-agent.sh.
//
//	go run ./bench/agent/gen -n 10000 -dir /tmp/a/torrents -state /tmp/a/state -tracker http://127.0.0.1:6969/announce
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/resume"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

func main() {
	n := flag.Int("n", 1000, "torrents to make")
	size := flag.Int("size", 64<<10, "payload bytes per torrent")
	piece := flag.Int64("piece", 16<<10, "piece length")
	dir := flag.String("dir", "", "directory for payloads and .torrent files")
	state := flag.String("state", "", "agent state directory for resume records")
	tracker := flag.String("tracker", "", "announce URL")
	noResume := flag.Bool("no-resume", false, "write no resume records (first start verifies everything)")
	flag.Parse()
	if *dir == "" || (*state == "" && !*noResume) {
		fmt.Fprintln(os.Stderr, "gen: -dir and -state are required")
		os.Exit(2)
	}
	if err := run(*n, *size, *piece, *dir, *state, *tracker, *noResume); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(n, size int, piece int64, dir, state, tracker string, noResume bool) error {
	for _, d := range []string{dir, state} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				if err := one(i, size, piece, dir, state, tracker, noResume); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// one makes torrent i: payload, .torrent and resume record.
func one(i, size int, piece int64, dir, state, tracker string, noResume bool) error {
	name := fmt.Sprintf("t%06d.bin", i)
	p := filepath.Join(dir, name)
	b := make([]byte, size)
	for off := 0; off+8 <= size; off += 4096 {
		binary.LittleEndian.PutUint64(b[off:], uint64(i)<<20|uint64(off))
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	o := metafile.MakeOptions{Paths: []string{p}, PieceLength: piece, NoDate: true, Workers: 1}
	if tracker != "" {
		o.Trackers = [][]string{{tracker}}
	}
	m, err := metafile.Make(context.Background(), o)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p+".torrent", m.Torrent, 0o644); err != nil {
		return err
	}
	if noResume {
		return nil
	}
	t, err := metafile.Parse(m.Torrent)
	if err != nil {
		return err
	}
	f, err := storage.Open(t.Layout, dir, t.Name, t.Single, storage.OpenOptions{})
	if err != nil {
		return err
	}
	defer f.Close()
	stamps, err := f.Stat()
	if err != nil {
		return err
	}
	have := wire.NewBitfield(t.Layout.NumPieces())
	for k := range have.Len() {
		have.Set(k)
	}
	rec := resume.Record{InfoHash: t.InfoHash, Have: have.Bytes(), Files: stamps, Clean: true}
	return rec.Save(resume.PathFor(state, t.InfoHash))
}
