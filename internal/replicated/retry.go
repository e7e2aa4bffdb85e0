package replicated

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// WithTimeout bounds ctx by d when it has no deadline of its own; the
// cancel func must be called either way.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); !ok {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// Jitter draws the random waits before retries. Its methods are safe for
// concurrent use; the zero value is not usable, use [NewJitter].
type Jitter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

// NewJitter returns a Jitter seeded at random.
func NewJitter() *Jitter { return NewJitterSeeded(rand.Uint64(), rand.Uint64()) }

// NewJitterSeeded returns a Jitter whose draws repeat for the same seeds.
func NewJitterSeeded(seed1, seed2 uint64) *Jitter {
	return &Jitter{rng: rand.New(rand.NewPCG(seed1, seed2))}
}

// Wait returns a duration uniform in [lo, hi), or lo when hi <= lo.
func (j *Jitter) Wait(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return lo + time.Duration(j.rng.Int64N(int64(hi-lo)))
}

// Sleep waits Wait(lo, hi), or until ctx ends (returning ctx.Err()).
func (j *Jitter) Sleep(ctx context.Context, lo, hi time.Duration) error {
	t := time.NewTimer(j.Wait(lo, hi))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ExhaustedMessage is the message of an error that ends a retry loop:
// head, then in parentheses detail (if any), the attempts made and the
// last attempt's error (if any).
func ExhaustedMessage(head, detail string, attempts int, last error) string {
	s := head + " ("
	if detail != "" {
		s += detail + ", "
	}
	s += fmt.Sprintf("%d attempts", attempts)
	if last != nil {
		s += ", last: " + last.Error()
	}
	return s + ")"
}
