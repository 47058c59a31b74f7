package announcer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// BEP 15 limits (its magic and actions are in internal/bittorrent).
const (
	udpMaxPacket  = 64 << 10
	udpMaxBackoff = 8 // BEP 15: n grows up to 8
)

// errIDExpired stops a retransmission that would carry a connection ID past its minute.
var errIDExpired = errors.New("connection ID expired")

// udpConn is the socket to one UDP tracker and its cached connection ID. The tracker ties
// the ID to our address and port, so the socket is kept between announces. Requests are
// serialised by mu.
type udpConn struct {
	hostport string
	timeout  time.Duration
	retries  int
	ttl      time.Duration

	mu   sync.Mutex
	conn *net.UDPConn
	id   uint64
	idAt time.Time // zero: no ID
}

func newUDPConn(u *url.URL, timeout time.Duration, retries int) *udpConn {
	return &udpConn{hostport: u.Host, timeout: timeout, retries: retries, ttl: connIDLifetime}
}

// close closes the socket; the next request opens a new one (and needs a new ID).
func (u *udpConn) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		u.conn.Close()
		u.conn = nil
	}
	u.idAt = time.Time{}
}

// ipLen is the length of the addresses in the tracker's peer lists: BEP 15 answers an
// announce over IPv6 with 18-byte peers.
func (u *udpConn) ipLen() int {
	if a, ok := u.conn.RemoteAddr().(*net.UDPAddr); ok && a.AddrPort().Addr().Unmap().Is6() {
		return 16
	}
	return 4
}

// request sends action with body (what follows the 16-byte header) and returns the reply's
// payload (what follows its 8-byte header). It connects first when it holds no fresh
// connection ID, and once more if a cached ID is refused (the tracker may have restarted).
// An error packet is a *FailureError. sent, when not nil, is set once the action's packet
// goes out.
func (u *udpConn) request(ctx context.Context, action uint32, body []byte, sent *atomic.Bool) ([]byte, int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", u.hostport)
		if err != nil {
			return nil, 0, err
		}
		u.conn = c.(*net.UDPConn)
	}
	conn := u.conn // close may clear the field while the AfterFunc still runs
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, udpMaxPacket)
	n := 0 // BEP 15's n: retransmissions so far, connects included
	staleRetried := false
	for {
		fresh := false
		if u.idAt.IsZero() || time.Since(u.idAt) >= u.ttl {
			tid := rand.Uint32()
			pkt := binary.BigEndian.AppendUint64(make([]byte, 0, 16), bittorrent.UDPProtocolID)
			pkt = binary.BigEndian.AppendUint32(pkt, bittorrent.UDPConnect)
			pkt = binary.BigEndian.AppendUint32(pkt, tid)
			act, p, err := u.exchange(ctx, pkt, tid, &n, buf, time.Time{})
			if err != nil {
				return nil, 0, fmt.Errorf("connect: %w", err)
			}
			if act == bittorrent.UDPError {
				return nil, 0, &FailureError{Reason: string(p)}
			}
			if act != bittorrent.UDPConnect || len(p) < 8 {
				return nil, 0, fmt.Errorf("%w: connect reply: action %d, %d bytes", ErrBadReply, act, len(p))
			}
			u.id, u.idAt, fresh = binary.BigEndian.Uint64(p), time.Now(), true
		}
		tid := rand.Uint32()
		pkt := binary.BigEndian.AppendUint64(make([]byte, 0, 16+len(body)), u.id)
		pkt = binary.BigEndian.AppendUint32(pkt, action)
		pkt = binary.BigEndian.AppendUint32(pkt, tid)
		pkt = append(pkt, body...)
		if sent != nil {
			sent.Store(true) // from here on the tracker may act on it
		}
		act, p, err := u.exchange(ctx, pkt, tid, &n, buf, u.idAt.Add(u.ttl))
		switch {
		case errors.Is(err, errIDExpired):
			continue
		case err != nil:
			return nil, 0, err
		case act == bittorrent.UDPError && !fresh && !staleRetried:
			staleRetried, u.idAt = true, time.Time{}
			continue
		case act == bittorrent.UDPError:
			return nil, 0, &FailureError{Reason: string(p)}
		case act != action:
			return nil, 0, fmt.Errorf("%w: action %d, want %d", ErrBadReply, act, action)
		}
		return append([]byte(nil), p...), u.ipLen(), nil
	}
}

// exchange sends pkt and waits for the reply carrying tid, retransmitting after
// timeout·2ⁿ. Replies with another transaction ID (late answers, forgeries) are ignored.
// It gives up with ErrNoReply after the last retransmission, and with errIDExpired when a
// retransmission would come after idLimit (unless zero).
func (u *udpConn) exchange(ctx context.Context, pkt []byte, tid uint32, n *int, buf []byte, idLimit time.Time) (uint32, []byte, error) {
	for {
		if _, err := u.conn.Write(pkt); err != nil {
			return 0, nil, err
		}
		deadline := time.Now().Add(u.timeout << min(*n, udpMaxBackoff))
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := u.conn.SetReadDeadline(deadline); err != nil {
			return 0, nil, err
		}
		// The AfterFunc may have set its past deadline before ours replaced it.
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		for {
			m, err := u.conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return 0, nil, ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return 0, nil, err
			}
			if m < 8 || binary.BigEndian.Uint32(buf[4:]) != tid {
				continue
			}
			return binary.BigEndian.Uint32(buf), buf[8:m], nil
		}
		if *n >= u.retries {
			return 0, nil, fmt.Errorf("%w after %d sends", ErrNoReply, *n+1)
		}
		*n++
		if !idLimit.IsZero() && time.Now().After(idLimit) {
			return 0, nil, errIDExpired
		}
	}
}

// udpAnnounceBody is BEP 15's announce request after the header, with BEP 41's URL data.
func (a *Announcer) udpAnnounceBody(u *url.URL, r *request) []byte {
	b := make([]byte, 0, 82+32)
	b = append(b, a.cfg.InfoHash[:]...)
	b = append(b, a.cfg.PeerID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(max(r.progress.Downloaded, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(r.progress.Left, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(r.progress.Uploaded, 0)))
	b = binary.BigEndian.AppendUint32(b, uint32(r.event))
	var ip [4]byte
	if addr, err := netip.ParseAddr(a.cfg.IP); err == nil && addr.Is4() {
		ip = addr.As4()
	}
	b = append(b, ip[:]...)
	b = binary.BigEndian.AppendUint32(b, r.key)
	b = binary.BigEndian.AppendUint32(b, uint32(int32(r.numWant)))
	b = binary.BigEndian.AppendUint16(b, a.cfg.Port)
	return appendURLData(b, u)
}

// appendURLData appends BEP 41's URLData options: the URL's path and query, in chunks of at
// most 255 bytes. Nothing for a bare host:port.
func appendURLData(b []byte, u *url.URL) []byte {
	s := u.EscapedPath()
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	if s == "/" {
		s = ""
	}
	for len(s) > 0 {
		c := s[:min(len(s), 255)]
		s = s[len(c):]
		b = append(b, 2, byte(len(c)))
		b = append(b, c...)
	}
	return b
}

// udpAnnounce sends one announce to a UDP tracker.
func (a *Announcer) udpAnnounce(ctx context.Context, tr *tracker, r *request) (*reply, error) {
	p, ipLen, err := tr.udp.request(ctx, bittorrent.UDPAnnounce, a.udpAnnounceBody(tr.u, r), &r.sent)
	if err != nil {
		return nil, err
	}
	if len(p) < 12 {
		return nil, fmt.Errorf("%w: announce reply of %d bytes", ErrBadReply, len(p)+8)
	}
	return &reply{
		interval: seconds(int64(binary.BigEndian.Uint32(p))),
		leechers: clampCount(int64(binary.BigEndian.Uint32(p[4:]))),
		seeders:  clampCount(int64(binary.BigEndian.Uint32(p[8:]))),
		peers:    appendCompact(nil, p[12:], ipLen),
	}, nil
}
