package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// storeLatency times every call the tracker makes to the Redis store, as seen from the
// tracker (round trip, redirections and retries included): webswarm_tracker_store_call_
// duration_seconds{call}. call is "script" (the announce, reveal, restore and sweep script:
// the hot path), "pipeline" or "command" (everything else: scans, reads for the stats and
// scrapes, health pings) — a bounded set, never a key or a command's arguments.
type storeLatency struct {
	hist *prometheus.HistogramVec
}

// storeLatencyBuckets run from 100 µs (one round trip on the same host) to 1 s (four times
// the default --store_timeout_ms, for slow non-announce reads): 12 buckets.
var storeLatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// instrumentStore adds the latency hook to rdb and registers its histogram with reg.
func instrumentStore(rdb redis.UniversalClient, reg prometheus.Registerer) error {
	h := &storeLatency{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "webswarm_tracker_store_call_duration_seconds",
		Help:    "Time of calls to the shared peer store (Redis), from the tracker's side: script (announces and the other swarm updates), pipeline or command.",
		Buckets: storeLatencyBuckets,
	}, []string{"call"})}
	for _, c := range []string{"script", "pipeline", "command"} {
		h.hist.WithLabelValues(c)
	}
	if err := reg.Register(h.hist); err != nil {
		return fmt.Errorf("store metrics: %w", err)
	}
	rdb.AddHook(h)
	return nil
}

// DialHook implements redis.Hook: dials are not timed (a failed one shows in the calls).
func (h *storeLatency) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h *storeLatency) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	script, command := h.hist.WithLabelValues("script"), h.hist.WithLabelValues("command")
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		o := command
		switch cmd.Name() {
		case "evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro":
			o = script
		}
		o.Observe(time.Since(start).Seconds())
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *storeLatency) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	pipeline := h.hist.WithLabelValues("pipeline")
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		pipeline.Observe(time.Since(start).Seconds())
		return err
	}
}
