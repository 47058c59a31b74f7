// Package apitest holds a fake agent.Controller for tests of the control API and its CLI.
package apitest

import (
	"cmp"
	"context"
	"crypto/sha1"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/agent"
)

// Fake is an in-memory agent.Controller: pause, resume, verify and remove change its torrents
// as the agent would, and every call is recorded. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	torrents map[bittorrent.InfoHash]agent.TorrentInfo
	status   agent.Status
	calls    []string
	err      error
	addFunc  func(ctx context.Context, torrentPath, dataDir string) (agent.TorrentInfo, error)
}

var _ agent.Controller = (*Fake)(nil)

// NewFake returns a Fake holding ts (their InfoHash must be 40 hex digits) and status st.
func NewFake(st agent.Status, ts ...agent.TorrentInfo) *Fake {
	f := &Fake{torrents: make(map[bittorrent.InfoHash]agent.TorrentInfo), status: st}
	for _, t := range ts {
		f.Put(t)
	}
	return f
}

// Put adds or replaces a torrent.
func (f *Fake) Put(t agent.TorrentInfo) {
	ih, err := bittorrent.ParseInfoHash(t.InfoHash)
	if err != nil {
		panic(fmt.Sprintf("apitest: %v", err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.torrents[ih] = t
}

// FailWith makes every method that can fail return err (nil restores normal behaviour).
func (f *Fake) FailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// OnAdd replaces Add's default, which names the torrent after the file and derives its
// info-hash from the path.
func (f *Fake) OnAdd(fn func(ctx context.Context, torrentPath, dataDir string) (agent.TorrentInfo, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addFunc = fn
}

// Calls returns the calls made so far, as "method arg...".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *Fake) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

// Status implements agent.Controller.
func (f *Fake) Status() agent.Status {
	f.record("status")
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Torrents = len(f.torrents)
	st.ByState = make(map[agent.State]int)
	for _, t := range f.torrents {
		st.ByState[t.State]++
	}
	return st
}

// List implements agent.Controller.
func (f *Fake) List() []agent.TorrentInfo {
	f.record("list")
	f.mu.Lock()
	defer f.mu.Unlock()
	l := make([]agent.TorrentInfo, 0, len(f.torrents))
	for _, t := range f.torrents {
		l = append(l, t)
	}
	slices.SortFunc(l, func(a, b agent.TorrentInfo) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.InfoHash, b.InfoHash))
	})
	return l
}

// Get implements agent.Controller.
func (f *Fake) Get(ih bittorrent.InfoHash) (agent.TorrentInfo, error) {
	f.record("get " + ih.String())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return agent.TorrentInfo{}, f.err
	}
	t, ok := f.torrents[ih]
	if !ok {
		return t, fmt.Errorf("%s: %w", ih, agent.ErrUnknown)
	}
	return t, nil
}

// Add implements agent.Controller.
func (f *Fake) Add(ctx context.Context, torrentPath, dataDir string) (agent.TorrentInfo, error) {
	f.record("add " + torrentPath + " " + dataDir)
	f.mu.Lock()
	fn, err := f.addFunc, f.err
	f.mu.Unlock()
	if err != nil {
		return agent.TorrentInfo{}, err
	}
	if fn != nil {
		t, err := fn(ctx, torrentPath, dataDir)
		if err == nil {
			f.Put(t)
		}
		return t, err
	}
	ih := bittorrent.InfoHash(sha1.Sum([]byte(torrentPath)))
	data := dataDir
	if data == "" {
		data = filepath.Dir(torrentPath)
	}
	t := agent.TorrentInfo{
		InfoHash: ih.String(), Name: strings.TrimSuffix(filepath.Base(torrentPath), ".torrent"),
		State: agent.Checking, Torrent: torrentPath, Data: data, Seeders: -1, Leechers: -1,
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.torrents[ih]; ok {
		return agent.TorrentInfo{}, fmt.Errorf("%s is already seeded: %w", torrentPath, agent.ErrConflict)
	}
	f.torrents[ih] = t
	return t, nil
}

// Remove implements agent.Controller.
func (f *Fake) Remove(ih bittorrent.InfoHash) error {
	f.record("remove " + ih.String())
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(ih); err != nil {
		return err
	}
	delete(f.torrents, ih)
	return nil
}

// Pause implements agent.Controller.
func (f *Fake) Pause(ih bittorrent.InfoHash) error {
	f.record("pause " + ih.String())
	return f.setState(ih, agent.Paused)
}

// Resume implements agent.Controller.
func (f *Fake) Resume(ih bittorrent.InfoHash) error {
	f.record("resume " + ih.String())
	return f.setState(ih, agent.Seeding)
}

// Verify implements agent.Controller.
func (f *Fake) Verify(ih bittorrent.InfoHash) error {
	f.record("verify " + ih.String())
	return f.setState(ih, agent.Checking)
}

// Rescan implements agent.Controller.
func (f *Fake) Rescan() { f.record("rescan") }

func (f *Fake) setState(ih bittorrent.InfoHash, s agent.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(ih); err != nil {
		return err
	}
	t := f.torrents[ih]
	t.State = s
	f.torrents[ih] = t
	return nil
}

// check returns the forced error or ErrUnknown; f.mu is held.
func (f *Fake) check(ih bittorrent.InfoHash) error {
	if f.err != nil {
		return f.err
	}
	if _, ok := f.torrents[ih]; !ok {
		return fmt.Errorf("%s: %w", ih, agent.ErrUnknown)
	}
	return nil
}
