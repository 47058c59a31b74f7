package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// AccessLog writes one line per request in Apache's combined format, with the resolved client
// IP. Lines are buffered and flushed every second (and on Close), so logging costs the hot path
// a few hundred nanoseconds; Reopen (on SIGHUP) lets logrotate move the file.
type AccessLog struct {
	path string // "" or "-" = stdout

	mu  sync.Mutex
	f   io.WriteCloser
	w   *bufio.Writer
	buf []byte

	stop chan struct{}
	done chan struct{}
}

// OpenAccessLog opens path for appending ("-" for standard output) and starts the flusher.
func OpenAccessLog(path string) (*AccessLog, error) {
	l := &AccessLog{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.flusher()
	return l, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (l *AccessLog) open() error {
	if l.path == "" || l.path == "-" {
		l.f = nopCloser{os.Stdout}
	} else {
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open access log: %w", err)
		}
		l.f = f
	}
	l.w = bufio.NewWriterSize(l.f, 64<<10)
	return nil
}

// Reopen flushes and reopens the file (after logrotate renamed it).
func (l *AccessLog) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
	l.f.Close()
	return l.open()
}

func (l *AccessLog) flusher() {
	defer close(l.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
		}
	}
}

// Close flushes and closes the log.
func (l *AccessLog) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		return err
	}
	return l.f.Close()
}

// Log writes one combined-format line.
func (l *AccessLog) Log(client netip.Addr, t time.Time, method, uri, proto string, status, size int, referer, agent string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	if client.IsValid() {
		b = client.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(b, method...)
	b = append(b, ' ')
	b = appendClean(b, uri)
	b = append(b, ' ')
	b = append(b, proto...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if size > 0 {
		b = strconv.AppendInt(b, int64(size), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, " \""...)
	b = appendClean(b, orDash(referer))
	b = append(b, "\" \""...)
	b = appendClean(b, orDash(agent))
	b = append(b, "\"\n"...)
	l.buf = b
	l.w.Write(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendClean appends s with quotes, backslashes and control bytes escaped, so a client
// cannot forge log lines.
func appendClean(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}
