//go:build linux

package wsapi

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// batchPair is a connection of s's poller, prepared as ServeWebSocket does but not in a set,
// whose writes the test drives, and the client end of its socket.
func batchPair(t *testing.T, s *Server, sndbuf int) (*conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	if sndbuf > 0 {
		sc.SetWriteBuffer(sndbuf)
		client.SetReadBuffer(sndbuf)
	}
	c := &conn{s: s, nc: sc, fd: -1}
	if !s.poll.prepare(c) {
		t.Fatal("prepare: no descriptor")
	}
	t.Cleanup(func() {
		s.poll.forget(c)
		sc.Close()
	})
	return c, client
}

// readFrames reads n unmasked server frames and returns their payloads.
func readFrames(t *testing.T, r *bufio.Reader, nc net.Conn, n int) []string {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []string
	for range n {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("after %d frames: %v", len(out), err)
		}
		size := int(h[1] & 0x7f)
		switch size {
		case 126:
			var l [2]byte
			io.ReadFull(r, l[:])
			size = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			io.ReadFull(r, l[:])
			size = int(binary.BigEndian.Uint64(l[:]))
		}
		if h[0] != 0x80|opText || h[1]&0x80 != 0 {
			t.Fatalf("frame header %#x %#x", h[0], h[1])
		}
		p := make([]byte, size)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(p))
	}
	return out
}

// nothingToRead checks that nc has no byte to read (within a short wait: what was written
// on loopback is there at once).
func nothingToRead(t *testing.T, r *bufio.Reader, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if b, err := r.ReadByte(); err == nil {
		t.Fatalf("read %q, want nothing yet", b)
	}
	nc.SetReadDeadline(time.Time{})
}

// TestBatchedWrites holds the batching of an event loop's pass (conn.write with a pass,
// loop.flushBatches) to its promises: the frames of a pass go out in one write when it
// ends, in order; a frame written without a pass takes the batch before it along; a full
// batch goes out before the pass ends; a connection that ended before the pass did gets
// nothing.
func TestBatchedWrites(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	writes := func() int { return int(testutil.ToFloat64(s.m.writes)) }
	pass := &loop{}
	c, client := batchPair(t, s, 0)
	r := bufio.NewReader(client)

	t.Run("a pass's frames go in one write, in order", func(t *testing.T) {
		before := writes()
		for i := range 10 {
			c.write(opText, []byte("m"+strconv.Itoa(i)), time.Second, false, pass)
		}
		nothingToRead(t, r, client)
		if len(pass.dirty) != 1 {
			t.Fatalf("%d connections to flush, want 1", len(pass.dirty))
		}
		pass.flushBatches()
		got := readFrames(t, r, client, 10)
		for i, m := range got {
			if m != "m"+strconv.Itoa(i) {
				t.Fatalf("frame %d is %q: %q", i, m, got)
			}
		}
		if w := writes() - before; w != 1 {
			t.Fatalf("%d writes for a pass's 10 frames, want 1", w)
		}
		if len(pass.dirty) != 0 || c.batch != nil {
			t.Fatalf("after the pass: %d dirty, batch %v", len(pass.dirty), c.batch)
		}
	})

	t.Run("a write without a pass keeps the order", func(t *testing.T) {
		c.write(opText, []byte("a"), time.Second, false, pass)
		c.write(opText, []byte("b"), time.Second, false, nil) // as the pinger or the relay
		c.write(opText, []byte("c"), time.Second, false, pass)
		if got := readFrames(t, r, client, 2); got[0] != "a" || got[1] != "b" {
			t.Fatalf("got %q, want a, b", got)
		}
		nothingToRead(t, r, client)
		pass.flushBatches()
		if got := readFrames(t, r, client, 1); got[0] != "c" {
			t.Fatalf("got %q, want c", got)
		}
	})

	t.Run("a full batch is written before the pass ends", func(t *testing.T) {
		big := make([]byte, 1000)
		n := maxBatch/len(big) + 1
		for i := range n {
			copy(big, fmt.Sprintf("%04d", i))
			c.write(opText, big, time.Second, false, pass)
		}
		got := readFrames(t, r, client, n)
		for i, m := range got {
			if m[:4] != fmt.Sprintf("%04d", i) {
				t.Fatalf("frame %d is %q", i, m[:4])
			}
		}
		pass.flushBatches()
		nothingToRead(t, r, client)
	})

	t.Run("an ended connection gets nothing", func(t *testing.T) {
		before := writes()
		d, dclient := batchPair(t, s, 0)
		d.write(opText, []byte("lost"), time.Second, false, pass)
		d.dead.Store(true) // what finish and kill do first
		d.write(opText, []byte("lost too"), time.Second, false, pass)
		pass.flushBatches()
		if w := writes() - before; w != 0 {
			t.Fatalf("%d writes to an ended connection", w)
		}
		if d.batch != nil {
			t.Fatal("the batch of an ended connection is kept")
		}
		dr := bufio.NewReader(dclient)
		nothingToRead(t, dr, dclient)
	})
}

// TestBatchedWritesStuck: a peer that reads nothing is closed as stuck once its queue
// passes the bound, whether its frames come in passes' batches or not.
func TestBatchedWritesStuck(t *testing.T) {
	s, _ := newTestServer(t, Config{MaxMessage: 4 << 10})
	pass := &loop{}
	c, _ := batchPair(t, s, 16<<10)
	msg := make([]byte, 1000)
	// Bounded: the socket buffers (16 KiB asked, the kernel doubles it) and the 16 KiB
	// queue hold well under 1 MB.
	for i := 0; i < 1000 && !c.dead.Load(); i++ {
		c.write(opText, msg, time.Second, false, pass)
		if i%5 == 4 {
			pass.flushBatches()
		}
	}
	pass.flushBatches()
	if !c.dead.Load() || c.why.Load() != endStuck {
		t.Fatalf("dead %v, why %d: want closed as stuck", c.dead.Load(), c.why.Load())
	}
	if q := testutil.ToFloat64(s.m.queued); q == 0 {
		t.Fatal("nothing was queued")
	}
}
