package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// limitFlags bound the work of reading one .torrent (show, verify, seed, get, agent): a
// torrent is read from strangers.
type limitFlags struct {
	maxSize   byteSize
	maxFiles  int
	maxPieces int
}

func (f *limitFlags) register(fl *pflag.FlagSet) {
	f.maxSize = metafile.DefaultMaxSize
	fl.Var(&f.maxSize, "max-torrent-size", "largest .torrent file read (bytes, or with a unit: 64MiB)")
	fl.IntVar(&f.maxFiles, "max-torrent-files", metafile.DefaultMaxFiles, "most files a .torrent may list (and 30 bencoded values a file in all)")
	fl.IntVar(&f.maxPieces, "max-torrent-pieces", metafile.DefaultMaxPieces, "most pieces a .torrent may have")
}

// limits returns the limits, or an error naming the bad flag.
func (f *limitFlags) limits() (metafile.Limits, error) {
	switch {
	case f.maxSize < 1<<10:
		return metafile.Limits{}, fmt.Errorf("--max-torrent-size %d: want at least 1KiB", f.maxSize)
	case f.maxFiles < 1:
		return metafile.Limits{}, fmt.Errorf("--max-torrent-files %d: want at least 1", f.maxFiles)
	case f.maxPieces < 1:
		return metafile.Limits{}, fmt.Errorf("--max-torrent-pieces %d: want at least 1", f.maxPieces)
	}
	return metafile.Limits{MaxSize: int64(f.maxSize), MaxFiles: f.maxFiles, MaxPieces: f.maxPieces}, nil
}

// byteSize is a flag of a byte count with an optional binary unit (K, KiB, M, MiB, G, GiB).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Type names the flag's value in --help.
func (b *byteSize) Type() string { return "size" }

// Set parses a byte count such as 33554432, 32MiB or 1G.
func (b *byteSize) Set(s string) error {
	n, err := metafile.ParseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}
