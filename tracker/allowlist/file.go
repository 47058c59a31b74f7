package allowlist

import "github.com/webswarm/webswarm/internal/bittorrent"

// File returns the path of an allowed torrent's .torrent file (for bttrack's allow_get).
func (l *List) File(ih bittorrent.InfoHash) (string, bool) {
	t, ok := (*l.table.Load())[ih]
	if !ok {
		return "", false
	}
	return t.Path, true
}
