package udpapi

import (
	"encoding/binary"
	"net/netip"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/tracker/announce"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// BEP 15 wire constants.
const (
	// protocolID is the magic a connect request carries in place of a connection ID.
	protocolID = bittorrent.UDPProtocolID

	actionConnect  = bittorrent.UDPConnect
	actionAnnounce = bittorrent.UDPAnnounce
	actionScrape   = bittorrent.UDPScrape
	actionError    = bittorrent.UDPError

	headerLen        = 16 // connection_id, action, transaction_id
	announceLen      = 98 // a whole announce request, before any BEP 41 options
	connectReplyLen  = 16
	announceReplyLen = 20 // before the peers
	scrapeEntryLen   = 12 // seeders, completed, leechers
	infoHashLen      = 20
)

// header is the part every request starts with.
type header struct {
	connID uint64
	action uint32
	txID   uint32
}

// parseHeader reads a request's header; ok is false when the packet is too short to hold
// one, and so too short to answer (no transaction ID to echo).
func parseHeader(p []byte) (h header, ok bool) {
	if len(p) < headerLen {
		return h, false
	}
	return header{
		connID: binary.BigEndian.Uint64(p[0:8]),
		action: binary.BigEndian.Uint32(p[8:12]),
		txID:   binary.BigEndian.Uint32(p[12:16]),
	}, true
}

// Parse failures, made once: reporting them allocates nothing.
var (
	errShortAnnounce = &announce.ClientError{Code: announce.CodeBadRequest,
		Reason: "announce request shorter than 98 bytes"}
	errBadEvent = &announce.ClientError{Code: announce.CodeBadEvent,
		Reason: "unknown event (BEP 15: 0 none, 1 completed, 2 started, 3 stopped)"}
	errBadProtocolID = &announce.ClientError{Code: announce.CodeBadRequest,
		Reason: "connect request without the BEP 15 protocol ID"}
	errUnknownAction = &announce.ClientError{Code: announce.CodeBadRequest,
		Reason: "unknown action"}
	// Short, as it may be cut to the request's length (unverified).
	errConnID = &announce.ClientError{Code: announce.CodeBadRequest,
		Reason: "bad connection ID"}
	errNoHashes = &announce.ClientError{Code: announce.CodeBadInfoHash,
		Reason: "scrape without an info_hash"}
	errPartialHash = &announce.ClientError{Code: announce.CodeBadInfoHash,
		Reason: "scrape info_hash list is not a multiple of 20 bytes"}
	errTooManyHashes = &announce.ClientError{Code: announce.CodeTooManyHashes,
		Reason: "too many info_hashes in one scrape"}
	errScrapeOff = &announce.ClientError{Code: announce.CodeScrapeOff,
		Reason: "scrape is disabled on this tracker"}
	errRateLimited = &announce.ClientError{Code: announce.CodeRateLimited,
		Reason: "too many announces from your address; slow down"}
)

// internalReason is what a client is told when the tracker, not the request, failed; the
// details go to the log.
const internalReason = "internal tracker error"

// events maps BEP 15's event numbers to swarm events.
var events = [...]swarm.Event{0: swarm.None, 1: swarm.Completed, 2: swarm.Started, 3: swarm.Stopped}

// parseAnnounce fills req from announce packet p (header included) sent from src. key is
// the 4-byte buffer req.Key will point at. Bytes after the 98th are BEP 41 options, which
// carry only a URL path and query the tracker has no use for: they are ignored, and
// malformed options do not fail the announce. allowIP is Config.AllowIPOverride.
func parseAnnounce(p []byte, src netip.Addr, req *announce.Request, key *[4]byte,
	allowIP func(src, claimed netip.Addr) bool) *announce.ClientError {
	if len(p) < announceLen {
		return errShortAnnounce
	}
	ev := binary.BigEndian.Uint32(p[80:84])
	if ev >= uint32(len(events)) {
		return errBadEvent
	}
	copy(req.InfoHash[:], p[16:36])
	copy(req.PeerID[:], p[36:56])
	req.Downloaded = binary.BigEndian.Uint64(p[56:64])
	req.Left = binary.BigEndian.Uint64(p[64:72])
	req.Uploaded = binary.BigEndian.Uint64(p[72:80])
	req.Event = events[ev]
	req.Addr = src
	// BEP 15's IP field is an IPv4 address; it means nothing in an IPv6 announce, whose
	// peers are answered from the IPv6 swarm.
	if ip := binary.BigEndian.Uint32(p[84:88]); ip != 0 && src.Is4() && allowIP != nil {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], ip)
		if claimed := netip.AddrFrom4(a); allowIP(src, claimed) {
			req.Addr = claimed
		}
	}
	copy(key[:], p[88:92])
	req.Key = key[:]
	if *key == [4]byte{} {
		req.Key = nil // key 0 is no key: every client sending it would share one
	}
	// Negative num_want (BEP 15: -1) asks for the default.
	req.NumWant = max(int(int32(binary.BigEndian.Uint32(p[92:96]))), -1)
	req.Port = binary.BigEndian.Uint16(p[96:98])
	req.Compact = true // BEP 15 peers are always compact
	req.NoPeerID = true
	return nil
}

// scrapeHashes checks a scrape packet's info-hash list and returns it (20 bytes each).
func scrapeHashes(p []byte, limit int) ([]byte, *announce.ClientError) {
	hs := p[headerLen:]
	// The count first: a packet longer than the read buffer arrives cut short, and its
	// cut-off list is still too long (the buffer holds one hash more than the limit).
	switch {
	case len(hs)/infoHashLen > limit:
		return nil, errTooManyHashes
	case len(hs) == 0:
		return nil, errNoHashes
	case len(hs)%infoHashLen != 0:
		return nil, errPartialHash
	}
	return hs, nil
}

func appendHeader(b []byte, action, txID uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, action)
	return binary.BigEndian.AppendUint32(b, txID)
}

// appendError appends an error packet (action 3) carrying reason.
func appendError(b []byte, txID uint32, reason string) []byte {
	return append(appendHeader(b, actionError, txID), reason...)
}

func appendConnect(b []byte, txID uint32, connID uint64) []byte {
	return binary.BigEndian.AppendUint64(appendHeader(b, actionConnect, txID), connID)
}

// appendAnnounce appends an announce reply with the peers of the family the request came
// in on (BEP 15: 6-byte IPv4 peers over IPv4, 18-byte IPv6 peers over IPv6).
func appendAnnounce(b []byte, txID uint32, resp *announce.Response, v6 bool) []byte {
	b = appendHeader(b, actionAnnounce, txID)
	b = binary.BigEndian.AppendUint32(b, uint32(resp.Interval.Seconds()))
	b = binary.BigEndian.AppendUint32(b, resp.Incomplete)
	b = binary.BigEndian.AppendUint32(b, resp.Complete)
	if v6 {
		return append(b, resp.Peers.V6...)
	}
	return append(b, resp.Peers.V4...)
}

// appendScrapeEntry appends one torrent's figures to a scrape reply (zeros for a torrent
// the tracker does not know).
func appendScrapeEntry(b []byte, c swarm.Counts) []byte {
	b = binary.BigEndian.AppendUint32(b, c.Complete)
	b = binary.BigEndian.AppendUint32(b, c.Downloaded)
	return binary.BigEndian.AppendUint32(b, c.Incomplete)
}
