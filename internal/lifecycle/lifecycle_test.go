package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
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
