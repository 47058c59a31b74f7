package storage

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// benchPayload is one 64 MiB file, read once so that the page cache holds it.
func benchPayload(b *testing.B) *Files {
	b.Helper()
	const size = 64 << 20
	l, err := NewLayout([]File{{Path: []string{"f"}, Length: size}}, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), stream(l, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := Open(l, dir, "f", true, OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// drain reads c until it is closed, in a goroutine the benchmark waits for.
func drain(b *testing.B, c net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { c.Close(); <-done })
}

// hidden hides the *net.TCPConn behind a plain io.Writer: SendTo's pread+write path.
type hidden struct{ io.Writer }

// BenchmarkSendTo sends 16 KiB blocks (a BitTorrent block) and 1 MiB runs into a loopback
// TCP connection drained by another goroutine: sendfile(2) against pread+write, and against
// io.Copy from an io.SectionReader (which Go copies through a buffer).
func BenchmarkSendTo(b *testing.B) {
	for _, size := range []int64{16 << 10, 1 << 20} {
		for _, mode := range []string{"sendfile", "pread+write", "io.Copy-SectionReader"} {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, size>>10), func(b *testing.B) {
				f := benchPayload(b)
				send, recv := tcpPair(b)
				drain(b, recv)
				var w io.Writer = send
				if mode == "pread+write" {
					w = hidden{send}
				}
				b.SetBytes(size)
				b.ReportAllocs()
				off := int64(0)
				for b.Loop() {
					var err error
					if mode == "io.Copy-SectionReader" {
						h, _ := f.acquire(0)
						_, err = io.Copy(send, io.NewSectionReader(h.f, off, size))
						f.release(h)
					} else {
						_, err = f.SendTo(w, off, size)
					}
					if err != nil {
						b.Fatal(err)
					}
					off = (off + size) % f.l.Total
				}
			})
		}
	}
}

// BenchmarkSendPiece sends PIECE messages of 16 KiB blocks: the 13-byte header written alone
// then SendTo, against SendWithPrefix (header and block in one segment).
func BenchmarkSendPiece(b *testing.B) {
	const block = 16 << 10
	header := make([]byte, 13)
	for _, mode := range []string{"write+SendTo", "SendWithPrefix"} {
		b.Run(mode, func(b *testing.B) {
			f := benchPayload(b)
			send, recv := tcpPair(b)
			drain(b, recv)
			b.SetBytes(block + 13)
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				var err error
				if mode == "SendWithPrefix" {
					_, err = f.SendWithPrefix(send, header, off, block)
				} else if _, err = send.Write(header); err == nil {
					_, err = f.SendTo(send, off, block)
				}
				if err != nil {
					b.Fatal(err)
				}
				off = (off + block) % f.l.Total
			}
		})
	}
}

// BenchmarkReadAtParallel reads 16 KiB blocks from many goroutines at once: the seeding read
// path without a lock.
func BenchmarkReadAtParallel(b *testing.B) {
	f := benchPayload(b)
	b.SetBytes(16 << 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := make([]byte, 16<<10)
		off := int64(0)
		for pb.Next() {
			if _, err := f.ReadAt(p, off); err != nil {
				b.Error(err)
				return
			}
			off = (off + 16<<10) % f.l.Total
		}
	})
}
