package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// plainInterval is how often a non-terminal gets a progress line.
const plainInterval = 2 * time.Second

// showProgress displays p on stderr until the returned stop is called: a bar with rate and ETA
// on a terminal, a plain line every few seconds otherwise, nothing when quiet.
func showProgress(label string, p *metafile.Progress, quiet bool) (stop func()) {
	if quiet {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	go func() {
		defer close(finished)
		if tty {
			barLoop(os.Stderr, label, p, done)
		} else {
			plainLoop(os.Stderr, label, p, done, plainInterval)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func barLoop(w io.Writer, label string, p *metafile.Progress, done <-chan struct{}) {
	var bar *progressbar.ProgressBar
	update := func() {
		if total := p.Total.Load(); bar == nil && total > 0 {
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(label),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionFullWidth(),
			)
		}
		if bar != nil {
			_ = bar.Set64(p.Done.Load())
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		update()
		select {
		case <-done:
			// Draw the final state, then end the line: the summary follows on stdout.
			update()
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(w)
			}
			return
		case <-tick.C:
		}
	}
}

func plainLoop(w io.Writer, label string, p *metafile.Progress, done <-chan struct{}, every time.Duration) {
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		total, n := p.Total.Load(), p.Done.Load()
		if total <= 0 {
			continue
		}
		el := time.Since(start).Seconds()
		rate := float64(n) / el
		eta := "?"
		if rate > 0 {
			eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s: %s of %s (%d%%), %.1f MB/s, ETA %s\n", label, metafile.FormatSize(n), metafile.FormatSize(total), 100*n/total, rate/1e6, eta)
	}
}
