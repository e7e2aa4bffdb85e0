package latency

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Each observation lands in the first bucket whose bound is at least it,
// above every bound in the last one, and the total and sum add up.
func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	b := Bounds()
	obs := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{b[0], 0},
		{b[0] + 1, 1},
		{b[3], 3},
		{b[len(b)-1], len(b) - 1},
		{b[len(b)-1] + 1, len(b)},
		{time.Hour, len(b)},
	}
	var sum time.Duration
	want := make([]uint64, len(b)+1)
	for _, o := range obs {
		h.Observe(o.d)
		want[o.want]++
		sum += o.d
	}
	counts, total, gotSum := h.Read()
	if !slices.Equal(counts, want) {
		t.Errorf("counts = %v, want %v", counts, want)
	}
	if total != uint64(len(obs)) || gotSum != sum {
		t.Fatalf("total %d, sum %v; want %d and %v", total, gotSum, len(obs), sum)
	}
}

// Bounds are ascending and a copy: changing the result changes nothing.
func TestBoundsCopy(t *testing.T) {
	b := Bounds()
	if !slices.IsSorted(b) || len(b) != len(bounds) {
		t.Fatalf("Bounds = %v, want %d ascending bounds", b, len(bounds))
	}
	b[0] = time.Hour
	if Bounds()[0] == time.Hour {
		t.Fatal("Bounds hands out the histogram's own array")
	}
}

// Observe from many goroutines loses nothing.
func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.Observe(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if _, total, sum := h.Read(); total != 8000 || sum != 8000*time.Millisecond {
		t.Fatalf("total, sum = %d, %v; want 8000, 8s", total, sum)
	}
}
