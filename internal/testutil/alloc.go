package testutil

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Allocated returns the bytes f allocates (the growth of
// runtime.MemStats.TotalAlloc while it runs), for tests that bound what
// forged input can make a decoder allocate. Other goroutines' allocations
// during f count too, so bounds should leave room for them.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// AllocPerRun returns the average bytes one call of f allocates over runs
// calls ([Allocated]) and its number of allocations
// ([testing.AllocsPerRun], after a warm-up call). Both counters are
// process-wide, so an allocation by another goroutine (the runtime's, or
// one an earlier test left winding down) lands in whichever measurement it
// overlaps; such noise only ever adds, so each figure is the smallest of
// a few measurements.
func AllocPerRun(runs int, f func()) (bytes uint64, allocs float64) {
	const tries = 3
	for i := range tries {
		a := testing.AllocsPerRun(runs, f)
		runtime.GC()
		total := Allocated(func() {
			for range runs {
				f()
			}
		})
		if b := total / uint64(runs); i == 0 || b < bytes {
			bytes = b
		}
		if i == 0 || a < allocs {
			allocs = a
		}
	}
	return bytes, allocs
}

// HeapPeak samples the heap in use (runtime.MemStats.HeapInuse) every
// millisecond, calling each of sample after each reading, until the
// returned stop is called; stop waits for the sampler to end and returns
// the largest growth over the heap in use at the start (after a
// collection). Tests use it to bound what a hostile peer can make a node
// hold at once.
func HeapPeak(sample ...func()) (stop func() uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			for _, f := range sample {
				f()
			}
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}
