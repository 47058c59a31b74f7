package storage

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (send, recv *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptTCP()
		ch <- res{c, err}
	}()
	send, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { send.Close(); r.c.Close() })
	return send, r.c
}

// readN reads n bytes from c in a goroutine; the result arrives on the channel.
func readN(c net.Conn, n int64) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, n))
		ch <- b
	}()
	return ch
}

func openTestPayload(t testing.TB, unit int64) (*Files, []byte) {
	t.Helper()
	l := testLayout(t, unit)
	dir := t.TempDir()
	data := stream(l, 11)
	writePayload(t, l, dir, "tor", data)
	f, err := Open(l, dir, "tor", false, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

func TestSendToTCP(t *testing.T) {
	f, data := openTestPayload(t, 1000)
	total := int64(len(data))
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"inside one file", 3000, 5000},
		{"whole stream across files and pads", 0, total},
		{"from a pad into a file", 12000, 10000},
		{"pad only", 11000, 2000},
		{"last bytes", total - 1, 1},
		{"nothing", 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send, recv := tcpPair(t)
			got := readN(recv, tc.n)
			n, err := f.SendTo(send, tc.off, tc.n)
			if err != nil || n != tc.n {
				t.Fatalf("SendTo = %d, %v", n, err)
			}
			send.CloseWrite()
			if b := <-got; !bytes.Equal(b, data[tc.off:tc.off+tc.n]) {
				t.Fatalf("received %d bytes, differ from the payload", len(b))
			}
		})
	}
}

func TestSendFileUsedOnTCP(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sendfile(2) is used on Linux only")
	}
	f, data := openTestPayload(t, 1000)
	send, recv := tcpPair(t)
	h, err := f.acquire(3)
	if err != nil {
		t.Fatal(err)
	}
	defer f.release(h)
	got := readN(recv, 7000)
	n, handled, err := sendFile(send, h.f, 1000, 7000)
	if !handled || err != nil || n != 7000 {
		t.Fatalf("sendFile = %d, %v, %v", n, handled, err)
	}
	// The file's own position is untouched: concurrent senders cannot disturb each other.
	if pos, err := h.f.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		t.Fatalf("file position after sendfile: %d, %v", pos, err)
	}
	off := l3(f)
	if b := <-got; !bytes.Equal(b, data[off+1000:off+8000]) {
		t.Fatal("sendfile sent other bytes")
	}
}

func l3(f *Files) int64 { return f.l.Files[3].Offset }

func TestSendToConcurrentSameFile(t *testing.T) {
	f, data := openTestPayload(t, 4000)
	const senders = 6
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		send, recv := tcpPair(t)
		off := l3(f) + int64(g)*3001
		n := int64(40000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := readN(recv, n)
			if k, err := f.SendTo(send, off, n); err != nil || k != n {
				errs <- errors.Join(err, errors.New("short send"))
				return
			}
			if b := <-got; !bytes.Equal(b, data[off:off+n]) {
				errs <- errors.New("received bytes differ")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestSendToBuffer(t *testing.T) {
	f, data := openTestPayload(t, 10000)
	var b bytes.Buffer
	off, n := int64(5), int64(len(data))-10
	if k, err := f.SendTo(&b, off, n); err != nil || k != n {
		t.Fatalf("SendTo(buffer) = %d, %v", k, err)
	}
	if !bytes.Equal(b.Bytes(), data[off:off+n]) {
		t.Fatal("bytes differ")
	}
}

type failWriter struct{ after int }

var errWrite = errors.New("write failed")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errWrite
	}
	w.after -= len(p)
	return len(p), nil
}

func TestSendToErrors(t *testing.T) {
	f, _ := openTestPayload(t, 1000)
	// A writer failing midway: the count says what went out, the error is the writer's.
	n, err := f.SendTo(&failWriter{after: 30000}, 0, f.l.Total)
	if !errors.Is(err, errWrite) || n != 30000 {
		t.Fatalf("SendTo(failing writer) = %d, %v", n, err)
	}
	// A deadline in the past: the poller's timeout, not a hang.
	send, _ := tcpPair(t)
	send.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := f.SendTo(send, l3(f), 1000); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendTo past the deadline: %v", err)
	}
	// A file cut short after Open: ErrShort naming it, over TCP and through a buffer.
	path := f.paths[3]
	if err := os.Truncate(path, 5000); err != nil {
		t.Fatal(err)
	}
	send, recv := tcpPair(t)
	got := readN(recv, 1<<20)
	n, err = f.SendTo(send, l3(f), 20000)
	if !errors.Is(err, ErrShort) || n != 5000 {
		t.Fatalf("SendTo(short file, tcp) = %d, %v", n, err)
	}
	send.CloseWrite()
	<-got
	if _, err := f.SendTo(io.Discard, l3(f), 20000); !errors.Is(err, ErrShort) {
		t.Fatalf("SendTo(short file, copy) = %v", err)
	}
}

func TestSendWithPrefix(t *testing.T) {
	f, data := openTestPayload(t, 1000)
	prefix := []byte("\x00\x00\x40\x09\x07header")
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"inside one file", 3000, 5000},
		{"starting in a pad", 11000, 9000},
		{"across everything", 0, int64(len(data))},
		{"no data", 100, 0},
	} {
		want := append(bytes.Clone(prefix), data[tc.off:tc.off+tc.n]...)
		t.Run(tc.name+"/tcp", func(t *testing.T) {
			send, recv := tcpPair(t)
			got := readN(recv, int64(len(want)))
			n, err := f.SendWithPrefix(send, prefix, tc.off, tc.n)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("SendWithPrefix = %d, %v", n, err)
			}
			send.CloseWrite()
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("received %d bytes, want %d: differ", len(b), len(want))
			}
		})
		t.Run(tc.name+"/copy", func(t *testing.T) {
			var b countingBuffer
			n, err := f.SendWithPrefix(&b, prefix, tc.off, tc.n)
			if err != nil || n != int64(len(want)) || !bytes.Equal(b.Bytes(), want) {
				t.Fatalf("SendWithPrefix(buffer) = %d, %v", n, err)
			}
			// The header rides with the first data: no write of the prefix alone.
			if b.writes > 1 && b.first == len(prefix) {
				t.Fatalf("prefix written alone (%d writes)", b.writes)
			}
		})
	}
	// A prefix too large to share the copy buffer is written on its own, still in order.
	big := bytes.Repeat([]byte{7}, copyChunk)
	var b bytes.Buffer
	if _, err := f.SendWithPrefix(&b, big, 0, 100); err != nil || !bytes.Equal(b.Bytes(), append(bytes.Clone(big), data[:100]...)) {
		t.Fatalf("large prefix: %v", err)
	}
}

type countingBuffer struct {
	bytes.Buffer
	writes, first int
}

func (b *countingBuffer) Write(p []byte) (int, error) {
	if b.writes == 0 {
		b.first = len(p)
	}
	b.writes++
	return b.Buffer.Write(p)
}
