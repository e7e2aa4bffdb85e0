package replicated

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestJitterWaitLiesWithinMinMax(t *testing.T) {
	j := NewJitterSeeded(1, 2)
	seen := map[time.Duration]bool{}
	for range 1000 {
		w := j.Wait(10*time.Millisecond, 20*time.Millisecond)
		if w < 10*time.Millisecond || w >= 20*time.Millisecond {
			t.Fatalf("wait %v outside [10ms, 20ms)", w)
		}
		seen[w] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct waits in 1000", len(seen))
	}
	if w := j.Wait(5*time.Millisecond, 5*time.Millisecond); w != 5*time.Millisecond {
		t.Fatalf("wait with hi == lo = %v", w)
	}
}

func TestJitterSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewJitter().Sleep(ctx, time.Hour, 2*time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended ctx = %v", err)
	}
	if err := NewJitter().Sleep(context.Background(), 0, time.Millisecond); err != nil {
		t.Fatalf("short Sleep = %v", err)
	}
}

func TestWithTimeoutKeepsAnEarlierDeadline(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Minute {
		t.Fatalf("no deadline applied: %v %v", d, ok)
	}
	parent, pcancel := context.WithTimeout(context.Background(), time.Hour)
	defer pcancel()
	want, _ := parent.Deadline()
	ctx, cancel = WithTimeout(parent, time.Minute)
	if d, _ := ctx.Deadline(); !d.Equal(want) {
		t.Fatalf("deadline %v replaced by %v", want, d)
	}
	cancel()
	if ctx.Err() == nil {
		t.Fatal("cancel did not end the context")
	}
}

func TestExhaustedMessage(t *testing.T) {
	last := errors.New("busy")
	for _, c := range []struct {
		detail string
		last   error
		want   string
	}{
		{"lock \"x\"", last, "head. (lock \"x\", 3 attempts, last: busy)"},
		{"", last, "head. (3 attempts, last: busy)"},
		{"", nil, "head. (3 attempts)"},
	} {
		if got := ExhaustedMessage("head.", c.detail, 3, c.last); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
