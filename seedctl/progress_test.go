package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/metafile"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPlainProgress(t *testing.T) {
	var p metafile.Progress
	p.Total.Store(4 << 20)
	p.Done.Store(1 << 20)
	var out syncBuffer
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		plainLoop(&out, "hashing", &p, done, 10*time.Millisecond)
		close(finished)
	}()
	testenv.WaitFor(t, 5*time.Second, "a progress line", func() error {
		if !strings.Contains(out.String(), "hashing: 1 MiB of 4 MiB (25%)") {
			return errorString("no line yet: " + out.String())
		}
		return nil
	})
	close(done)
	<-finished
	if !strings.Contains(out.String(), "ETA") || !strings.Contains(out.String(), "MB/s") {
		t.Errorf("progress line without rate or ETA: %q", out.String())
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestUnderscoreFlags(t *testing.T) {
	cmd := newRoot()
	mk, _, err := cmd.Find([]string{"make"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mk.ParseFlags([]string{"--web_seed", "http://x/", "--piece_size", "1MiB", "--no_date", "--include_hidden"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-seed", "piece-size", "no-date", "include-hidden"} {
		if !mk.Flags().Changed(name) {
			t.Errorf("--%s not set through its underscore spelling", name)
		}
	}
}
