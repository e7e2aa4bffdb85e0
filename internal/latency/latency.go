// Package latency is the lock-free latency histogram the kernel keeps of
// its calls and package metrics offers to other packages, over one fixed
// set of bucket bounds so that every node's histograms add up. It imports
// only the standard library, so the kernel can use it.
package latency

import (
	"sync/atomic"
	"time"
)

// bounds are the buckets' inclusive upper bounds: from a loopback round
// trip (tens of microseconds) to the kernel's default call timeout,
// roughly 1-2.5-5 per decade.
var bounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// Bounds returns a copy of the buckets' upper bounds, ascending.
func Bounds() []time.Duration { return append([]time.Duration(nil), bounds[:]...) }

// Histogram counts durations per bucket: observing is a short scan and two
// atomic adds, so callers on many goroutines do not serialize on a lock.
// The zero value is ready to use.
type Histogram struct {
	counts [len(bounds) + 1]atomic.Uint64 // the last: above every bound
	sum    atomic.Int64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Read returns the count of each bucket (len(Bounds())+1 entries, the last
// for the durations above every bound, not cumulative), their total and
// the sum of the durations. It reads the counts one by one: under
// concurrent observations the total and the sum may disagree by the
// observations made meanwhile.
func (h *Histogram) Read() (counts []uint64, total uint64, sum time.Duration) {
	counts = make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	return counts, total, time.Duration(h.sum.Load())
}
