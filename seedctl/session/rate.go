package session

import "time"

// rateMeter estimates a byte rate from a running total sampled once a second: an
// exponential moving average over about five seconds, as clients show.
type rateMeter struct {
	last  int64
	at    time.Time
	value float64 // bytes per second
}

// sample takes the running total at now and returns the rate.
func (r *rateMeter) sample(now time.Time, total int64) int64 {
	if r.at.IsZero() {
		r.at, r.last = now, total
		return 0
	}
	dt := now.Sub(r.at).Seconds()
	if dt <= 0 {
		return int64(r.value)
	}
	inst := float64(total-r.last) / dt
	alpha := min(dt/5, 1)
	r.value += alpha * (inst - r.value)
	r.at, r.last = now, total
	return int64(r.value)
}

// rate is the last estimate.
func (r *rateMeter) rate() int64 { return int64(r.value) }
