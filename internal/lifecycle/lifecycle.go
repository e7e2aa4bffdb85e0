// Package lifecycle holds what the module's long-lived types share about
// their lifetime: to offer Close beside Stop(ctx) (an immediate Close is a
// Stop whose context has already ended), and a context that ends when a
// component closes its done channel, so work a component starts is
// cancelled by its shutdown.
package lifecycle

import (
	"context"
	"errors"
	"time"
)

// DoneContext returns a context that is done when done is closed; its Err
// is then context.Canceled. It has no deadline and no values. Use it to
// bound work by a component's lifetime (context.AfterFunc,
// context.WithTimeout) without a goroutine per call.
func DoneContext(done <-chan struct{}) context.Context { return doneCtx(done) }

// doneCtx is a context.Context done when its channel closes.
type doneCtx <-chan struct{}

func (c doneCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c doneCtx) Done() <-chan struct{}       { return c }
func (c doneCtx) Err() error {
	select {
	case <-c:
		return context.Canceled
	default:
		return nil
	}
}
func (c doneCtx) Value(any) any { return nil }

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
