package storage

import (
	"fmt"
	"io"
	"net"
)

// copyChunk is the buffer size of SendTo's pread+write path: a few 16 KiB blocks, small
// enough to stay in cache.
const copyChunk = 64 << 10

// SendTo writes stream bytes [off, off+n) to w and returns how many it wrote. When w is a
// *net.TCPConn the file bytes go by sendfile(2) with an explicit offset, file by file, so they
// never pass through user space and concurrent senders of one file do not share a file
// position; pad files go as zeros. Otherwise (an encrypted stream, a buffer) it reads with
// pread and writes. Write deadlines set on the connection apply.
//
// Note: io.Copy(conn, io.NewSectionReader(file, off, n)) does not reach sendfile: Go's
// TCPConn.ReadFrom only recognises an *os.File (sent from, and moving, its shared offset),
// so it would fall back to a copy through a buffer.
func (f *Files) SendTo(w io.Writer, off, n int64) (int64, error) {
	return f.SendWithPrefix(w, nil, off, n)
}

// SendWithPrefix writes prefix and then stream bytes [off, off+n) to w, like SendTo; the
// count it returns includes the prefix. It is for a PIECE message: its 13-byte header goes
// with the block in one TCP segment (send with MSG_MORE before sendfile) or one write (copied
// in front of the data), where writing the header alone first would cost a system call and,
// with TCP_NODELAY, a packet of its own.
func (f *Files) SendWithPrefix(w io.Writer, prefix []byte, off, n int64) (int64, error) {
	if off < 0 || n < 0 || off > f.l.Total-n {
		return 0, fmt.Errorf("send %d bytes at %d of %d: %w", n, off, f.l.Total, ErrRange)
	}
	tc, _ := w.(*net.TCPConn)
	var sent int64
	if len(prefix) > 0 && tc != nil && n > 0 {
		k, handled, err := sendMore(tc, prefix)
		sent += k
		if err != nil {
			return sent, err
		}
		if handled {
			prefix = nil
		}
	}
	var buf [4]Span
	for _, sp := range f.l.Spans(buf[:0], off, n) {
		k, err := f.sendSpan(w, tc, sp, &prefix)
		sent += k
		if err != nil {
			return sent, err
		}
	}
	if len(prefix) > 0 { // nothing to send after it
		k, err := w.Write(prefix)
		sent += int64(k)
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// sendSpan writes one file span to w (tc is w when it is a TCP connection), after *prefix
// when that is not empty (it is then cleared); the count includes the prefix.
func (f *Files) sendSpan(w io.Writer, tc *net.TCPConn, sp Span, prefix *[]byte) (int64, error) {
	var sent int64
	if tc != nil && len(*prefix) == 0 && !f.l.Files[sp.File].Pad {
		h, err := f.acquire(sp.File)
		if err != nil {
			return 0, err
		}
		k, handled, err := sendFile(tc, h.f, sp.Offset, sp.Length)
		f.release(h)
		sent += k
		if err != nil {
			return sent, fmt.Errorf("sendfile %s: %w", f.paths[sp.File], err)
		}
		if handled && sent < sp.Length {
			return sent, fmt.Errorf("%s: ends before byte %d: %w", f.paths[sp.File], sp.Offset+sp.Length, ErrShort)
		}
		if handled {
			return sent, nil
		}
		// sendfile is not possible here (file system, kernel): copy the rest.
	}
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	var done int64 // of the span
	for done < sp.Length {
		b := *bp
		head := 0
		if p := *prefix; len(p) > 0 && len(p) <= len(b)/2 {
			head = copy(b, p)
			*prefix = nil
		} else if len(p) > 0 {
			k, err := w.Write(p)
			sent += int64(k)
			if err != nil {
				return sent, err
			}
			*prefix = nil
		}
		b = b[:head+int(min(int64(len(b)-head), sp.Length-done))]
		if _, err := f.ReadFileAt(sp.File, b[head:], sp.Offset+done); err != nil {
			return sent, err
		}
		k, err := w.Write(b)
		sent += int64(k)
		if err != nil {
			return sent, err
		}
		done += int64(len(b) - head)
	}
	return sent, nil
}
