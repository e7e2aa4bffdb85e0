package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// StopNow hands stop an ended context, hides the cancellation alone and
// keeps every other error.
func TestStopNow(t *testing.T) {
	var got context.Context
	if err := StopNow(func(ctx context.Context) error { got = ctx; return ctx.Err() }); err != nil {
		t.Fatalf("cancellation reported: %v", err)
	}
	if got.Err() == nil {
		t.Fatal("stop got a live context")
	}
	other := errors.New("disk full")
	if err := StopNow(func(ctx context.Context) error { return fmt.Errorf("flush: %w", other) }); !errors.Is(err, other) {
		t.Fatalf("StopNow = %v, want the stop error", err)
	}
	// One part cancelled, one failed: the failure survives.
	err := StopNow(func(ctx context.Context) error {
		return errors.Join(fmt.Errorf("stop server: %w", ctx.Err()), fmt.Errorf("flush: %w", other))
	})
	if !errors.Is(err, other) || errors.Is(err, context.Canceled) {
		t.Fatalf("StopNow of a joined error = %v, want the flush error alone", err)
	}
}

// DoneContext is live until its channel closes, then cancelled; contexts
// derived from it end with it.
func TestDoneContext(t *testing.T) {
	done := make(chan struct{})
	ctx := DoneContext(done)
	child, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	fired := make(chan struct{})
	context.AfterFunc(ctx, func() { close(fired) })
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before close = %v, want nil", err)
	}
	if _, ok := ctx.Deadline(); ok {
		t.Fatal("DoneContext has a deadline")
	}
	if v := ctx.Value("key"); v != nil {
		t.Fatalf("Value = %v, want nil", v)
	}
	select {
	case <-ctx.Done():
		t.Fatal("done before the channel closed")
	default:
	}
	close(done)
	<-ctx.Done()
	<-child.Done()
	<-fired
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after close = %v, want context.Canceled", err)
	}
	if err := child.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("child Err = %v, want context.Canceled", err)
	}
}
