package notp

import "errors"

// Lifecycle errors. The module's long-lived types (kernel.Kernel,
// genserver.Server, gossip.Ring, cluster.Node and the services built on
// them: dlm, dsm, conflux) report their lifecycle with sentinels of the
// same names in their own packages, each of which wraps the one here, so a
// caller can test for the kind with either:
//
//	errors.Is(err, gossip.ErrClosed) // this ring was closed
//	errors.Is(err, notp.ErrClosed)   // some part of the node was closed
//
// A package declares the kinds that can happen to its type: a
// genserver.Server can be started again after Stop, so it has no
// ErrClosed, and only constructors that take a kernel have ErrNilKernel.
//
// Their stops have one shape: Close() stops at once, and a type that can
// drain work first also has Stop(ctx), which drains until ctx ends; Close
// is then Stop with a context that has already ended, returning Stop's
// errors other than that cancellation. After a first stop, both return
// nil. kernel.Kernel has Close only, as it has nothing of its own to
// drain, and dsm.DSM calls its immediate stop StopNow, as its Close(ctx,
// id, holder) is a semaphore operation. A stop before Start differs by
// type: dlm, dsm and the replicated services report ErrNotStarted, while
// a conflux.Store returns nil and can no longer be started.
var (
	// ErrAlreadyStarted: Start was called on something already started.
	ErrAlreadyStarted = errors.New("already started")
	// ErrNotStarted: the operation needs Start first.
	ErrNotStarted = errors.New("not started")
	// ErrClosed: the value was closed or stopped and takes no new work.
	ErrClosed = errors.New("closed")
	// ErrNilKernel: a constructor was given a nil *kernel.Kernel.
	ErrNilKernel = errors.New("nil kernel")
)
