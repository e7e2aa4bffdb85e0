package kernel

import (
	"time"

	"github.com/notp-go/notp/internal/latency"
)

// CallLatencyBounds returns the upper bounds of the buckets of
// Stats.CallLatency (a copy): 25 µs to 30 s, roughly 1-2.5-5 per decade,
// from a loopback round trip to CallTimeout's default. Fixed, so that
// every node's histograms add up.
func CallLatencyBounds() []time.Duration { return latency.Bounds() }

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

// latencySnapshot reads h over [CallLatencyBounds]. Under concurrent
// observations Count and Sum may disagree by the observations made
// meanwhile.
func latencySnapshot(h *latency.Histogram) Histogram {
	counts, n, sum := h.Read()
	return Histogram{Bounds: latency.Bounds(), Counts: counts, Count: n, Sum: sum}
}
