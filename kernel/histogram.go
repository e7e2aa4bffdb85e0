package kernel

import (
	"sync/atomic"
	"time"
)

// callLatencyBounds are the upper bounds of Stats.CallLatency's buckets:
// from a loopback round trip (tens of microseconds) to CallTimeout's
// default. Fixed, so that every node's histograms add up.
var callLatencyBounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// CallLatencyBounds returns the upper bounds of the buckets of
// Stats.CallLatency (a copy): 25 µs to 30 s, roughly 1-2.5-5 per decade.
func CallLatencyBounds() []time.Duration {
	return append([]time.Duration(nil), callLatencyBounds[:]...)
}

// Histogram is a snapshot of a latency histogram with fixed buckets.
type Histogram struct {
	// Bounds are the buckets' inclusive upper bounds, ascending.
	Bounds []time.Duration
	// Counts holds one count per bucket (not cumulative), plus a last one
	// for the observations above every bound: len(Bounds)+1 entries.
	Counts []uint64
	// Count is the number of observations (the sum of Counts) and Sum
	// their total.
	Count uint64
	Sum   time.Duration
}

// histogram is a lock-free histogram over callLatencyBounds: observing is
// a short scan and two atomic adds, so callers on many goroutines do not
// serialize on a lock.
type histogram struct {
	counts [len(callLatencyBounds) + 1]atomic.Uint64
	sum    atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(callLatencyBounds) && d > callLatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// snapshot reads the counts one by one: under concurrent observations
// Count and Sum may disagree by the observations made meanwhile.
func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: CallLatencyBounds(), Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}
