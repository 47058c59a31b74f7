package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/webswarm/webswarm/internal/atomicfile"
	"github.com/webswarm/webswarm/internal/bittorrent"
)

// persistent is what the operator told the agent, kept across restarts in
// StateDir/agent.json: torrents added from outside Dir, removed ones (so that a rescan does
// not take them again) and paused ones.
type persistent struct {
	Added   []added  `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"` // info-hashes, hex
	Paused  []string `json:"paused,omitempty"`
}

// added is a torrent given to Add.
type added struct {
	Torrent string `json:"torrent"`
	Data    string `json:"data"`
}

func loadPersistent(path string) (persistent, error) {
	var p persistent
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return persistent{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func (p *persistent) isRemoved(ih bittorrent.InfoHash) bool {
	return slices.Contains(p.Removed, ih.String())
}

func (p *persistent) paused(ih bittorrent.InfoHash) bool {
	return slices.Contains(p.Paused, ih.String())
}

// set adds or drops ih in list.
func set(list []string, ih bittorrent.InfoHash, on bool) []string {
	h := ih.String()
	list = slices.DeleteFunc(list, func(s string) bool { return s == h })
	if on {
		list = append(list, h)
	}
	return list
}

// save writes the state atomically (internal/atomicfile), 0600 like the resume records
// beside it.
func (p *persistent) save(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), atomicfile.Options{Mode: 0o600})
}

// savePersistent saves the operator's state; a failure is logged and counted.
func (a *Agent) savePersistent() {
	a.mu.Lock()
	p := persistent{
		Added:   slices.Clone(a.persist.Added),
		Removed: slices.Clone(a.persist.Removed),
		Paused:  slices.Clone(a.persist.Paused),
	}
	a.mu.Unlock()
	if err := p.save(a.statePath()); err != nil {
		a.metrics.stateSaveFailures.WithLabelValues("agent").Inc()
		a.log.Error("agent state not saved", "path", a.statePath(), "err", err)
	}
}

// restoreAdded takes again the torrents added through the Controller in earlier runs.
func (a *Agent) restoreAdded() {
	a.mu.Lock()
	list := slices.Clone(a.persist.Added)
	a.mu.Unlock()
	for _, ad := range list {
		mi, err := a.cfg.TorrentLimits.Load(ad.Torrent)
		if err != nil {
			a.log.Error("torrent added earlier cannot be read", "path", ad.Torrent, "err", err)
			continue
		}
		a.mu.Lock()
		if a.byHash[mi.InfoHash] == nil {
			a.addTorrentLocked(mi, ad.Torrent, ad.Data, true)
		}
		a.mu.Unlock()
	}
}

// absPath is p made absolute, for paths kept across restarts.
func absPath(p string) string {
	if ap, err := filepath.Abs(p); err == nil {
		return ap
	}
	return p
}
