package udpapi

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
)

// TestBurst: clients send bursts of datagrams without waiting — announces, each client's
// own connect, a datagram too short to answer and one with an unknown action — so the
// server reads many at once. Every answerable datagram gets its reply (in any order: the
// workers answer side by side) with the right action; the short one none. With batching off the replies are the same.
func TestBurst(t *testing.T) {
	for _, noBatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("noBatch=%v", noBatch), func(t *testing.T) {
			f := serve(t, "127.0.0.1", Config{}, func(s *Server) { s.noBatch = noBatch })
			const clients, rounds = 4, 60
			cs := make([]*client, clients)
			for i := range cs {
				cs[i] = newClient(t, f.addr)
				cs[i].connect()
			}
			type sent struct {
				tx     uint32
				action uint32
			}
			want := make([][]sent, clients)
			for i, c := range cs {
				for r := range rounds {
					tx := c.nextTx()
					var p []byte
					var action uint32
					switch r % 6 {
					case 3:
						p, action = connectPacket(tx), actionConnect
					case 4:
						p = []byte{1, 2, 3} // too short: dropped without a reply
					case 5:
						p = binary.BigEndian.AppendUint64(nil, c.connID)
						p = binary.BigEndian.AppendUint32(p, 9)
						p, action = binary.BigEndian.AppendUint32(p, tx), actionError
					default:
						a := ann{ih: byte(1 + r%3), id: byte('a' + i), left: uint64(r), numWant: 50, port: uint16(6000 + i)}
						p, action = a.packet(c.connID, tx), actionAnnounce
					}
					if len(p) > 3 {
						want[i] = append(want[i], sent{tx, action})
					}
					if _, err := c.conn.Write(p); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, c := range cs {
				// Workers answer side by side: replies come in any order.
				got := map[uint32]uint32{}
				for range want[i] {
					r := c.read()
					if len(r) < 8 {
						t.Fatalf("client %d: reply %x", i, r)
					}
					got[binary.BigEndian.Uint32(r[4:])] = binary.BigEndian.Uint32(r)
				}
				for _, w := range want[i] {
					if a, ok := got[w.tx]; !ok || a != w.action {
						t.Errorf("client %d: tx %d answered %v with action %d, want %d", i, w.tx, ok, a, w.action)
					}
				}
			}
			if got := f.srv.batched.Load(); noBatch && got != 0 {
				t.Errorf("%d datagrams read in batches with batching off", got)
			}
		})
	}
}

// TestBatchRead: datagrams waiting before the server first reads are read in batches, and
// each gets its own reply: connects, announces with a connection ID never given (an error
// reply each) and, unanswered, a datagram too short to read.
func TestBatchRead(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	const clients, each = 3, 30
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = newClient(t, server)
		for r := range each {
			tx := cs[i].nextTx()
			p := connectPacket(tx)
			switch r % 3 {
			case 1:
				p = ann{ih: 1, id: byte('a' + i), numWant: 5}.packet(0x1234, tx)
			case 2:
				p = p[:5]
			}
			if _, err := cs[i].conn.Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := serveConn(t, pc, Config{})
	for i, c := range cs {
		got := map[uint32]uint32{}
		for range 2 * each / 3 {
			r := c.read()
			got[binary.BigEndian.Uint32(r[4:])] = binary.BigEndian.Uint32(r)
		}
		for r := range each {
			tx, want := uint32(r+1), uint32(actionConnect)
			switch r % 3 {
			case 1:
				want = actionError
			case 2:
				continue
			}
			if a, ok := got[tx]; !ok || a != want {
				t.Errorf("client %d: tx %d answered %v with action %d, want %d", i, tx, ok, a, want)
			}
		}
	}
	if n := f.srv.batched.Load(); n < clients*each/batchSize {
		t.Errorf("%d datagrams read in batches of more than one, want at least %d", n, clients*each/batchSize)
	}
}
