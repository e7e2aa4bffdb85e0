// Package lifecycle holds what the module's long-lived types share to
// offer Close beside Stop(ctx): an immediate Close is a Stop whose context
// has already ended.
package lifecycle

import (
	"context"
	"errors"
)

// StopNow calls stop with an already cancelled context, so it drains
// nothing, and returns its error unless that error is only the
// cancellation it was given.
func StopNow(stop func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
