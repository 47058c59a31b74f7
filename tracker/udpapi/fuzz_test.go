package udpapi

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/webswarm/webswarm/tracker/announce"
)

// FuzzParsePacket feeds arbitrary packets to a worker's handler (parser, core and reply
// writer, without a socket). With signed set, the packet's first 8 bytes are replaced by a
// valid connection ID, so that the fuzzer reaches announce and scrape. Whatever comes in,
// the reply must be a well-formed BEP 15 packet for the request's transaction ID, or
// nothing when the packet is too short to carry one; and an error packet to an unverified
// sender is no longer than the request.
func FuzzParsePacket(f *testing.F) {
	a := ann{ih: 1, id: 'f', left: 1, event: 2, ip: [4]byte{10, 0, 0, 1}, numWant: -1, port: 6881}
	f.Add(connectPacket(1), false)
	f.Add(a.packet(0, 2), true)
	f.Add(append(a.packet(0, 3), 2, 3, '/', 'a', '?', 1, 0), true)
	f.Add(scrapePacket(0, 4, 1, 2, 3), true)
	f.Add(scrapePacket(0, 5), true)
	f.Add([]byte{1, 2, 3}, false)

	tr := newTracker(f, nil, announce.Config{})
	srv, err := New(Config{AllowIPOverride: func(src, claimed netip.Addr) bool { return true }}, tr, nil)
	if err != nil {
		f.Fatal(err)
	}
	w := srv.newWorker()
	src := netip.MustParseAddrPort("192.0.2.7:51413")
	now := time.Unix(1_800_000_000, 0)
	maxReply := max(announceReplyLen+6*tr.Config().MaxNumWant, 8+scrapeEntryLen*srv.cfg.MaxScrapeHashes, 8+200)

	f.Fuzz(func(t *testing.T, p []byte, signed bool) {
		if signed && len(p) >= 8 {
			// A copy: the engine keeps using p's memory, and a valid ID written into it
			// would turn up in later, "unsigned" inputs.
			p = append([]byte(nil), p...)
			binary.BigEndian.PutUint64(p, srv.ids.make(src, now))
		}
		r, _ := w.handle(p, src, now)
		if len(p) < headerLen {
			if len(r) != 0 {
				t.Fatalf("%d-byte packet answered", len(p))
			}
			return
		}
		if len(r) < 8 || len(r) > maxReply {
			t.Fatalf("reply of %d bytes", len(r))
		}
		if tx := binary.BigEndian.Uint32(r[4:]); tx != binary.BigEndian.Uint32(p[12:]) {
			t.Fatalf("reply transaction ID %d, request's %d", tx, binary.BigEndian.Uint32(p[12:]))
		}
		action, reqAction := binary.BigEndian.Uint32(r), binary.BigEndian.Uint32(p[8:])
		if action != actionError && action != reqAction {
			t.Fatalf("action %d answered with action %d", reqAction, action)
		}
		switch action {
		case actionConnect:
			if len(r) != connectReplyLen {
				t.Fatalf("connect reply of %d bytes", len(r))
			}
		case actionAnnounce:
			if (len(r)-announceReplyLen)%6 != 0 || len(r) < announceReplyLen {
				t.Fatalf("announce reply of %d bytes", len(r))
			}
		case actionScrape:
			if n := (len(p) - headerLen) / infoHashLen; len(r) != 8+scrapeEntryLen*n {
				t.Fatalf("scrape of %d hashes answered with %d bytes", n, len(r))
			}
		case actionError:
			verified := (reqAction == actionAnnounce || reqAction == actionScrape) &&
				srv.ids.valid(binary.BigEndian.Uint64(p), src, now)
			if !verified && len(r) > len(p) {
				t.Fatalf("%d-byte error reply to an unverified %d-byte request", len(r), len(p))
			}
			if verified && len(r) == 8 {
				t.Fatal("error packet without a message")
			}
		default:
			t.Fatalf("reply action %d", action)
		}
	})
}
