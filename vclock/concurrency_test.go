package vclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp/vclock"
)

// Two clocks merged into each other from several goroutines, alongside
// self-merges, comparisons, encoding and trimming, must neither race nor
// deadlock (run with -race).
func TestConcurrentCrossMerge(t *testing.T) {
	a, b := vclock.New(), vclock.New()
	const workers, rounds = 4, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			x, y := a, b
			if w%2 == 1 {
				x, y = b, a
			}
			id := string(rune('a' + w))
			for range rounds {
				x.Increment(id)
				x.Merge(y)
				y.Merge(x)
				x.Merge(x)
				_ = x.Descends(y)
				_ = x.Compare(y)
				_ = x.Equal(y)
				if _, err := x.MarshalJSON(); err != nil {
					t.Error(err)
				}
				for range x.All() {
					x.Has(id) // the loop body may use the clock
				}
				x.Trim(time.Now(), vclock.DefaultTrimOptions())
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("deadlock: cross merges did not finish within 30s")
	}
	a.Merge(b)
	b.Merge(a)
	if a.Compare(b) != vclock.Equal {
		t.Fatalf("after final merges %v and %v are not Equal in order", a, b)
	}
	for w := range workers {
		if got := a.Count(string(rune('a' + w))); got != rounds {
			t.Errorf("count of worker %d = %d, want %d", w, got, rounds)
		}
	}
}
