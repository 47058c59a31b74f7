package agent

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// State is the lifecycle state of one torrent in the agent.
type State string

// The states a torrent can be in.
const (
	// Checking means the payload is being verified against the piece hashes.
	Checking State = "checking"
	// Queued means the torrent waits for a --max-active slot or a verification slot.
	Queued State = "queued"
	// Seeding means the torrent is complete and announced to its trackers.
	Seeding State = "seeding"
	// Downloading means the torrent is incomplete and fetching pieces.
	Downloading State = "downloading"
	// Paused means the torrent was paused by the operator or its storage is missing.
	Paused State = "paused"
	// Error means the payload is missing or failed verification; it is retried later.
	Error State = "error"
)

// TorrentInfo is the externally visible state of one torrent.
type TorrentInfo struct {
	InfoHash   string  `json:"info_hash"` // 40 hex
	Name       string  `json:"name"`
	Size       int64   `json:"size"`
	State      State   `json:"state"`
	Error      string  `json:"error,omitempty"` // why State is error (or a tracker problem)
	Progress   float64 `json:"progress"`        // 0..1: check progress while checking, else have/total
	Peers      int     `json:"peers"`
	WebRTC     int     `json:"webrtc_peers"` // how many of Peers are WebRTC (browsers); the rest TCP
	Seeds      int     `json:"seeds"`
	UploadRate int64   `json:"upload_rate"` // bytes/s
	Uploaded   int64   `json:"uploaded"`    // all runs (resume record)
	Downloaded int64   `json:"downloaded"`
	Ratio      float64 `json:"ratio"`             // uploaded / size
	Torrent    string  `json:"torrent"`           // .torrent path
	Data       string  `json:"data"`              // payload path
	Seeders    int     `json:"seeders"`           // tracker's counts from the last announce/scrape, -1 unknown
	Leechers   int     `json:"leechers"`          // tracker's counts from the last announce/scrape, -1 unknown
	Completed  int     `json:"completed"`         // tracker's count of finished downloads, -1 unknown
	Tracker    string  `json:"tracker,omitempty"` // last failure/warning, empty when fine
}

// Status summarises the whole agent.
type Status struct {
	Version    string        `json:"version"`
	Dir        string        `json:"dir"`
	StateDir   string        `json:"state_dir"`
	ListenPort int           `json:"listen_port"`
	Started    time.Time     `json:"started"`
	Torrents   int           `json:"torrents"`
	ByState    map[State]int `json:"by_state"`
	Peers      int           `json:"peers"`
	WebRTC     int           `json:"webrtc_peers"` // how many of Peers are WebRTC (browsers)
	UploadRate int64         `json:"upload_rate"`
	Uploaded   int64         `json:"uploaded"`
}

// Controller is what the control API serves. The agent (*Agent) implements it.
type Controller interface {
	Status() Status
	List() []TorrentInfo // sorted by name, then info-hash
	Get(ih bittorrent.InfoHash) (TorrentInfo, error)
	Add(ctx context.Context, torrentPath, dataDir string) (TorrentInfo, error) // dataDir "" = beside the .torrent / --data
	Remove(ih bittorrent.InfoHash) error                                       // stop seeding it (announce stopped); never deletes files
	Pause(ih bittorrent.InfoHash) error
	Resume(ih bittorrent.InfoHash) error
	Verify(ih bittorrent.InfoHash) error // queue a full re-check
	Rescan()                             // as SIGHUP
}

// Errors returned by Controller methods, classified with errors.Is.
var (
	ErrUnknown  = errors.New("no such torrent") // → 404
	ErrInvalid  = errors.New("invalid request") // wrapped by bad input → 400
	ErrConflict = errors.New("conflict")        // e.g. add of a torrent already there → 409
)

// SocketPath is the control socket of the agent using stateDir.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, "agent.sock") }

// LockPath is the lock file that keeps a second agent off stateDir.
func LockPath(stateDir string) string { return filepath.Join(stateDir, "agent.lock") }
