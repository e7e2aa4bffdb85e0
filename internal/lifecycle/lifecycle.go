// Package lifecycle holds what the module's long-lived types share to
// offer Close beside Stop(ctx): an immediate Close is a Stop whose context
// has already ended.
package lifecycle

import (
	"context"
	"errors"
)

// StopNow calls stop with an already cancelled context, so it drains
// nothing, and returns its error without the cancellations it was given:
// a joined error (errors.Join, as a Stop of several parts returns) keeps
// every part that is not one.
func StopNow(stop func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return withoutCanceled(stop(ctx))
}

// withoutCanceled returns err without the parts that are only
// context.Canceled.
func withoutCanceled(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var keep []error
		for _, e := range j.Unwrap() {
			if e = withoutCanceled(e); e != nil {
				keep = append(keep, e)
			}
		}
		if len(keep) == len(j.Unwrap()) {
			return err // nothing dropped: keep the error as it was
		}
		return errors.Join(keep...)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
