package session

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Metadata fetching (BEP 9) for magnet links.
const (
	// metadataPeers is how many peers FetchMetadata asks at once.
	metadataPeers = 8
	// metadataPeerTimeout bounds the whole exchange with one peer.
	metadataPeerTimeout = 60 * time.Second
	// metadataRetry is how long a peer whose exchange failed waits before it is asked again
	// (when the tracker names it again): with a single seeder, one failure must not end the
	// fetch for good.
	metadataRetry = 5 * time.Second
)

// ErrNoMetadata: the peers given had no (valid) metadata for the info-hash before the
// address channel closed.
var ErrNoMetadata = errors.New("session: no peer gave the metadata")

// FetchMetadata gets the info dictionary of ih from peers (BEP 9) and checks that its SHA-1
// is ih. It dials the addresses that arrive on peers, up to a few at a time, and returns the
// first complete, valid copy; a peer whose copy does not hash to ih is dropped and counted
// as hostile. It fails when ctx ends, or with ErrNoMetadata once peers is closed and every
// address was tried.
func FetchMetadata(ctx context.Context, ih bittorrent.InfoHash, peers <-chan []netip.AddrPort, cfg Config) ([]byte, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	type result struct {
		addr netip.AddrPort
		info []byte
		err  error
	}
	results := make(chan result)
	var queue []netip.AddrPort
	// failed holds when each peer's last exchange failed; a peer queued or being asked is
	// present with the zero time.
	failed := map[netip.AddrPort]time.Time{}
	running := 0
	var lastErr error
	for {
		for running < metadataPeers && len(queue) > 0 {
			a := queue[0]
			queue = queue[1:]
			running++
			wg.Add(1)
			go func() {
				defer wg.Done()
				info, err := fetchFrom(ctx, a, ih, &cfg)
				select {
				case results <- result{a, info, err}:
				case <-ctx.Done():
				}
			}()
		}
		if peers == nil && running == 0 && len(queue) == 0 {
			if lastErr != nil {
				return nil, fmt.Errorf("%w: %w", ErrNoMetadata, lastErr)
			}
			return nil, ErrNoMetadata
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("session: fetch metadata: %w", context.Cause(ctx))
		case addrs, ok := <-peers:
			if !ok {
				peers = nil
				continue
			}
			for _, a := range addrs {
				if !a.IsValid() || a.Port() == 0 {
					continue
				}
				if at, seen := failed[a]; seen && (at.IsZero() || time.Since(at) < metadataRetry) {
					continue
				}
				failed[a] = time.Time{}
				queue = append(queue, a)
			}
		case r := <-results:
			running--
			if r.err == nil {
				return r.info, nil
			}
			lastErr = r.err
			failed[r.addr] = time.Now()
			if errors.Is(r.err, errBadMetadata) {
				// Lying about the info dictionary is not a transient failure: never again.
				failed[r.addr] = time.Now().Add(24 * time.Hour)
				cfg.Metrics.hostileDisconnect(HostileProtocol)
			}
			cfg.Logger.Debug("metadata fetch failed", "err", r.err)
		}
	}
}

var errBadMetadata = errors.New("session: metadata does not match the info-hash")

// fetchFrom runs the BEP 9 exchange with the peer at a.
func fetchFrom(ctx context.Context, a netip.AddrPort, ih bittorrent.InfoHash, cfg *Config) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataPeerTimeout)
	defer cancel()
	c, err := wire.Dial(ctx, cfg.Dialer, a.String(), cfg.Wire, ih)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	lim := c.Limits(cfg.Wire.Reserved)
	if !lim.Extended {
		return nil, fmt.Errorf("session: metadata from %v: peer lacks the extension protocol", a)
	}
	w := wire.NewWriter(c.Writer)
	if lim.Fast {
		w.HaveNone()
	}
	hs := wire.ExtendedHandshake{M: map[string]int{wire.UTMetadata: ourUTMetadata}, V: "webswarm " + cfg.Version, Reqq: ReqQ, P: int(cfg.ListenPort)}
	payload, err := hs.Encode()
	if err != nil {
		return nil, err
	}
	w.Extended(0, payload)
	if err := w.Flush(); err != nil {
		return nil, err
	}
	r := wire.NewReader(c.Reader, wire.Limits{MaxBlock: wire.MaxRequest, Fast: lim.Fast, Extended: lim.Extended})
	var m wire.Message
	var info []byte
	var got []bool
	remaining := 0
	for {
		if err := r.Read(&m); err != nil {
			return nil, fmt.Errorf("session: metadata from %v: %w", a, err)
		}
		if m.ID != wire.Extended {
			continue
		}
		switch m.ExtendedID {
		case 0:
			if info != nil {
				continue // a repeated handshake: keep going with what was asked
			}
			h, err := wire.ParseExtendedHandshake(m.Payload)
			if err != nil {
				return nil, err
			}
			id := h.M[wire.UTMetadata]
			if id == 0 || h.MetadataSize <= 0 {
				return nil, fmt.Errorf("session: metadata from %v: peer does not serve it", a)
			}
			info = make([]byte, h.MetadataSize)
			n := (h.MetadataSize + wire.MetadataPieceLen - 1) / wire.MetadataPieceLen
			got, remaining = make([]bool, n), n
			for i := range n {
				w.Extended(byte(id), wire.AppendMetadata(nil, &wire.MetadataMessage{Type: wire.MetadataRequest, Piece: i}))
			}
			if err := w.Flush(); err != nil {
				return nil, err
			}
		case ourUTMetadata:
			if info == nil {
				continue
			}
			mm, err := wire.ParseMetadata(m.Payload)
			if err != nil {
				return nil, err
			}
			switch mm.Type {
			case wire.MetadataReject:
				return nil, fmt.Errorf("session: metadata from %v: piece %d rejected", a, mm.Piece)
			case wire.MetadataData:
				start := mm.Piece * wire.MetadataPieceLen
				want := min(wire.MetadataPieceLen, len(info)-start)
				if mm.TotalSize != len(info) || start >= len(info) || len(mm.Data) != want {
					return nil, fmt.Errorf("%w: piece %d of %d bytes from %v", errBadMetadata, mm.Piece, len(mm.Data), a)
				}
				if !got[mm.Piece] {
					got[mm.Piece] = true
					remaining--
					copy(info[start:], mm.Data)
				}
				if remaining == 0 {
					sum := sha1.Sum(info)
					if !bytes.Equal(sum[:], ih[:]) {
						return nil, fmt.Errorf("%w: from %v", errBadMetadata, a)
					}
					return info, nil
				}
			}
		}
	}
}
