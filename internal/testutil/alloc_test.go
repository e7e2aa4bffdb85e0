package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

var sink []byte

// Allocated and AllocPerRun see what f allocates, and only that: a
// function allocating 64 KiB per call is told from one allocating nothing.
func TestAllocMeasuresWhatTheFunctionAllocates(t *testing.T) {
	const size = 64 << 10
	if got := Allocated(func() { sink = make([]byte, size) }); got < size {
		t.Fatalf("Allocated of a %d-byte slice = %d bytes", size, got)
	}
	bytes, allocs := AllocPerRun(4, func() { sink = make([]byte, size) })
	if bytes < size || bytes > 2*size || allocs != 1 {
		t.Fatalf("AllocPerRun of a %d-byte slice = %d bytes in %.1f allocations, want about %d in 1", size, bytes, allocs, size)
	}
	bytes, allocs = AllocPerRun(4, func() {})
	if bytes > 1024 || allocs != 0 {
		t.Fatalf("AllocPerRun of an empty function = %d bytes in %.1f allocations, want none", bytes, allocs)
	}
}

// HeapPeak sees memory held while it samples, calls each sample, and
// stops when told.
func TestHeapPeakSeesHeldMemory(t *testing.T) {
	const size = 32 << 20
	var samples atomic.Int64
	stop := HeapPeak(func() { samples.Add(1) })
	held := make([]byte, size)
	for i := range held {
		held[i] = 1 // touch every page, so the heap holds it
	}
	if err := Poll(5*time.Second, func() bool { return samples.Load() >= 3 }); err != nil {
		t.Fatal("sampler did not run")
	}
	peak := stop()
	sink = held
	if peak < size {
		t.Fatalf("HeapPeak = %d bytes while %d were held", peak, size)
	}
	n := samples.Load()
	if err := Poll(20*time.Millisecond, func() bool { return samples.Load() > n }); err == nil {
		t.Fatal("sampler still running after stop")
	}
}
