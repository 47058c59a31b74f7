package swarm

import (
	"errors"
	"net/netip"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Event is the announce event of BEP 3.
type Event uint8

// The events a client may send; None is a regular re-announce.
const (
	None Event = iota
	Started
	Completed
	Stopped
)

// String returns the event as it appears in an announce (or "none").
func (e Event) String() string {
	switch e {
	case Started:
		return "started"
	case Completed:
		return "completed"
	case Stopped:
		return "stopped"
	}
	return "none"
}

// Errors Announce returns. Each is a client-visible refusal, not a store failure.
var (
	// ErrPeerIDTaken: the peer ID is registered from another address with a key, and the
	// announce does not carry that key.
	ErrPeerIDTaken = errors.New("peer_id is in use from another address; announce with the same key to move it")
	// ErrIPChanged: the peer ID is registered without a key from another IP address. A
	// keyless peer cannot move (bttrack's "ip changed"): anyone who learnt its peer ID could
	// otherwise take it over, stop it or count its completion.
	ErrIPChanged = errors.New("ip changed: peer_id is registered from another IP address without a key")
	// ErrTooManyTorrents: the store holds its maximum number of torrents.
	ErrTooManyTorrents = errors.New("tracker is full: too many torrents")
	// ErrTooManyPeers: the torrent holds its maximum number of peers.
	ErrTooManyPeers = errors.New("torrent is full: too many peers")
	// ErrTrackerPeersFull: the store holds its maximum number of peers over all torrents.
	ErrTrackerPeersFull = errors.New("tracker is full: too many peers")
	// ErrTooManyPeersFromIP: the announcer's IP address (IPv6: its /64) has its maximum
	// number of peers registered, over all torrents.
	ErrTooManyPeersFromIP = errors.New("too many peers registered from your IP address")
	// ErrUnavailable: a shared store (Redis) did not answer in time. Nothing was refused:
	// the announce may be retried later. Store errors wrap it.
	ErrUnavailable = errors.New("tracker storage unavailable, retry later")
)

// Announce is what a store needs of one announce.
type Announce struct {
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	// Addr is where other peers reach this one: an IPv4 (or IPv4-mapped) or IPv6 address.
	Addr netip.AddrPort
	// Key is the client's BEP 3 "key", as sent (any bytes, possibly empty).
	Key   []byte
	Left  uint64
	Event Event
	// NumWant is how many peers to return (already clamped by the caller); 0 returns none.
	NumWant int
	// Hidden keeps a newly registered peer out of other peers' lists until Reveal (NAT check).
	Hidden bool
}

// Format says how peers are appended to a PeerList.
type Format uint8

const (
	// Compact appends the address only: 6 bytes (IPv4 + port) or 18 (IPv6 + port).
	Compact Format = iota
	// WithID appends the address followed by the 20-byte peer ID.
	WithID
)

// PeerList receives the peers an announce hands out. The store appends; the caller owns and
// reuses the buffers (set their length to 0 between announces).
type PeerList struct {
	Format Format
	V4     []byte
	V6     []byte
}

// Reset empties both lists, keeping their storage.
func (l *PeerList) Reset() { l.V4, l.V6 = l.V4[:0], l.V6[:0] }

// Counts are a torrent's figures as a scrape reports them.
type Counts struct {
	Complete   uint32 // seeders
	Incomplete uint32 // leechers
	Downloaded uint32 // completions counted, once per peer
}

// Result is what an announce did.
type Result struct {
	Counts
	// Hidden says the announcer is registered but kept out of peer lists until Reveal.
	Hidden bool
}

// PeerRecord is one stored peer as Walk reports it and Restore accepts it.
type PeerRecord struct {
	ID       bittorrent.PeerID
	Addr     netip.AddrPort
	Seeder   bool
	Hidden   bool
	Counted  bool // its completion has been counted
	LastSeen time.Time
}

// Totals summarise the whole store.
type Totals struct {
	Torrents   int
	Seeders    int
	Leechers   int
	Downloaded uint64
	PeersV4    int
	PeersV6    int
}

// Store is peer storage for a tracker. Implementations are safe for concurrent use.
type Store interface {
	// Announce records the peer (or removes it on Stopped), appends up to a.NumWant other
	// peers to out (never the announcer; no seeders for a seeder) and returns the counts after
	// the change. A known peer ID announced from another address is acted on (moved,
	// stopped, completed) only with the key it registered (else ErrPeerIDTaken); one
	// registered without a key only from its own IP address (else ErrIPChanged). Keys are
	// compared so that they cannot be found offline (a keyed hash or the key itself).
	Announce(a *Announce, out *PeerList) (Result, error)
	// Reveal makes a hidden peer eligible for peer lists (its NAT check passed).
	Reveal(ih bittorrent.InfoHash, id bittorrent.PeerID, addr netip.AddrPort)
	// Scrape returns a torrent's counts and whether the store knows it.
	Scrape(ih bittorrent.InfoHash) (Counts, bool)
	// RangeTorrents calls fn for every torrent until fn returns false. The order is unspecified.
	RangeTorrents(fn func(ih bittorrent.InfoHash, c Counts) bool)
	// Walk calls fn with every torrent's completions and peers (the slice is reused after fn
	// returns), for saving state and computing statistics.
	Walk(fn func(ih bittorrent.InfoHash, downloaded uint32, peers []PeerRecord) bool)
	// Peers calls fn with one torrent's completions and peers (the slice is reused after fn
	// returns) and reports whether the store knows the torrent; fn is not called if it does
	// not. With RangeTorrents it lets a caller visit torrents in an order of its choosing
	// while holding no more than one torrent's peers (the state file's sorted save).
	Peers(ih bittorrent.InfoHash, fn func(downloaded uint32, peers []PeerRecord)) bool
	// Restore loads a torrent's saved peers and completions (peers older than the expiry are
	// dropped). Restored peers carry no key: each is keyless until it announces from its own
	// address.
	Restore(ih bittorrent.InfoHash, downloaded uint32, peers []PeerRecord) error
	// Expire removes peers that have not announced within the peer timeout (the store also
	// does this on its own schedule) and reads the clock afresh.
	Expire()
	// Totals returns store-wide counts.
	Totals() Totals
	// Close stops background work.
	Close() error
}
