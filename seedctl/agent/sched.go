package agent

import (
	"container/heap"
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/seedctl/announcer"
)

// scheduler drives every torrent's announcer from one goroutine: a min-heap of next
// announce times, a token bucket that spreads announces out (start-up of thousands of
// torrents never reaches the trackers in one burst), and a fixed pool of workers calling
// announcer.Step. An idle torrent costs a heap slot, not a goroutine.
type scheduler struct {
	lim     *rate.Limiter
	workers int
	// result is told the outcome of every Step that announced (before and after differ).
	result func(t *torrent, before, after announcer.Status, peers []netip.AddrPort)

	mu   sync.Mutex
	h    dueHeap
	wake chan struct{}
	work chan *torrent
}

func newScheduler(perSecond float64, workers int, result func(*torrent, announcer.Status, announcer.Status, []netip.AddrPort)) *scheduler {
	return &scheduler{
		lim:     rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond/10))),
		workers: workers,
		result:  result,
		wake:    make(chan struct{}, 1),
		work:    make(chan *torrent),
	}
}

// add schedules t's first announce with a at due.
func (s *scheduler) add(t *torrent, a *announcer.Announcer, due time.Time) {
	s.mu.Lock()
	t.ann = a
	t.annStop = false
	t.due = due
	if t.heapIdx < 0 && !t.inFlight {
		heap.Push(&s.h, t)
	}
	s.mu.Unlock()
	s.signal()
}

// remove takes t off the schedule and returns its announcer for the caller to Stop, or nil
// when a worker holds it (the worker stops it when done: Step and Stop never overlap).
func (s *scheduler) remove(t *torrent) *announcer.Announcer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.inFlight {
		t.annStop = true
		return nil
	}
	if t.heapIdx >= 0 {
		heap.Remove(&s.h, t.heapIdx)
	}
	a := t.ann
	t.ann = nil
	return a
}

// drain empties the schedule and returns every announcer not in a worker's hands (call it
// after run has returned, when no worker is left).
func (s *scheduler) drain() []*announcer.Announcer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*announcer.Announcer
	for _, t := range s.h {
		t.heapIdx = -1
		if t.ann != nil {
			out = append(out, t.ann)
			t.ann = nil
		}
	}
	s.h = nil
	return out
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run dispatches due announces to the workers until ctx ends, then waits for them.
func (s *scheduler) run(ctx context.Context, stopped func(*announcer.Announcer)) {
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() { s.worker(ctx, stopped) })
	}
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var next *torrent
		wait := time.Hour
		if len(s.h) > 0 {
			if d := time.Until(s.h[0].due); d > 0 {
				wait = d
			} else {
				next = heap.Pop(&s.h).(*torrent)
				next.inFlight = true
			}
		}
		s.mu.Unlock()
		if next == nil {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-timer.C:
			}
			continue
		}
		if s.lim.Wait(ctx) != nil {
			s.putBack(next, nil, time.Time{}, stopped)
			return
		}
		select {
		case s.work <- next:
		case <-ctx.Done():
			s.putBack(next, nil, time.Time{}, stopped)
			return
		}
	}
}

// worker steps the announcers it is handed and puts them back on the schedule.
func (s *scheduler) worker(ctx context.Context, stopped func(*announcer.Announcer)) {
	for {
		var t *torrent
		select {
		case <-ctx.Done():
			return
		case t = <-s.work:
		}
		// The announcer is read under mu: add may give t a new one while this one is
		// stepped (a re-check during an announce).
		s.mu.Lock()
		ann := t.ann
		s.mu.Unlock()
		before := ann.Status()
		peers, next := ann.Step(ctx)
		after := ann.Status()
		if ctx.Err() == nil && !after.LastAnnounce.Equal(before.LastAnnounce) {
			s.result(t, before, after, peers)
		}
		s.putBack(t, ann, next, stopped)
	}
}

// putBack ends a worker's hold on t, whose announcer was ann when the worker took it (nil:
// not stepped, due unused). t goes back on the heap at due; or, when add gave it a new
// announcer meanwhile, ann is stopped and the new one goes on the heap at the time add
// gave it; or, when t was removed meanwhile, its announcers are stopped (stopped is called
// after mu is released).
func (s *scheduler) putBack(t *torrent, ann *announcer.Announcer, due time.Time, stopped func(*announcer.Announcer)) {
	var stop [2]*announcer.Announcer
	pushed := false
	s.mu.Lock()
	t.inFlight = false
	if ann == nil {
		due = t.due
	} else if t.ann != ann {
		stop[0], due = ann, t.due // replaced: the new one announces when add said
	}
	if t.annStop || due.IsZero() || t.ann == nil {
		t.annStop = false
		stop[1], t.ann = t.ann, nil
	} else {
		t.due = due
		heap.Push(&s.h, t)
		pushed = true
	}
	s.mu.Unlock()
	if pushed {
		s.signal() // it may be due before what the dispatcher sleeps for
	}
	for _, a := range stop {
		if a != nil {
			stopped(a)
		}
	}
}

// dueHeap orders torrents by their next announce.
type dueHeap []*torrent

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *dueHeap) Push(x any) {
	t := x.(*torrent)
	t.heapIdx = len(*h)
	*h = append(*h, t)
}
func (h *dueHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.heapIdx = -1
	return t
}
