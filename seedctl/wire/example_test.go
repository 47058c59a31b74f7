package wire_test

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// Serving one incoming connection, the shape a session takes: handshake under a deadline,
// extended handshake and have-set in one batch, then a read loop that answers REQUESTs by
// reading storage straight into the write buffer.
func Example() {
	var (
		torrents  = map[bittorrent.InfoHash]int{} // info-hash → piece count
		readBlock = func(ih bittorrent.InfoHash, index, begin uint32, dst []byte) error { return nil }
	)
	cfg := &wire.Config{
		Reserved:   wire.DefaultReserved,
		Encryption: wire.Prefer,
		Known:      func(ih bittorrent.InfoHash) bool { _, ok := torrents[ih]; return ok },
		InfoHashes: func(yield func(bittorrent.InfoHash) bool) {
			for ih := range torrents {
				if !yield(ih) {
					return
				}
			}
		},
	}
	serve := func(conn net.Conn) error {
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := wire.Accept(conn, cfg)
		if err != nil {
			return err // errors.Is(err, wire.ErrUnknownInfoHash) etc.: count it
		}
		lim := c.Limits(cfg.Reserved)
		lim.NumPieces = torrents[c.Peer.InfoHash]
		r := wire.NewReader(c.Reader, lim)
		w := wire.NewWriter(c.Writer)
		if lim.Extended {
			eh := wire.ExtendedHandshake{V: "webswarm", Reqq: 500}
			b, _ := eh.Encode()
			w.Extended(0, b)
		}
		if lim.Fast {
			w.HaveAll()
		}
		var m wire.Message
		for {
			// One write for everything answered since the last one, once the peer's
			// pipelined messages are all handled.
			if c.Reader.Buffered() == 0 {
				if err := w.Flush(); err != nil {
					return err
				}
			}
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			if err := r.Read(&m); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err // errors.Is(err, wire.ErrRequestTooLong) etc.: count it
			}
			switch m.ID {
			case wire.Interested:
				w.Unchoke()
			case wire.Request:
				buf := w.PieceBuffer(m.Index, m.Begin, int(m.Length))
				if err := readBlock(c.Peer.InfoHash, m.Index, m.Begin, buf); err != nil {
					return err
				}
			}
		}
	}
	_ = serve
}
