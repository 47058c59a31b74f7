package httpapi

import (
	"bytes"
	"slices"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

func sortLarge(hs []bittorrent.InfoHash) {
	slices.SortFunc(hs, func(a, b bittorrent.InfoHash) int { return bytes.Compare(a[:], b[:]) })
}
