package notp

import "errors"

// Lifecycle errors. Every long-lived type of the module (kernel.Kernel,
// genserver.Server, gossip.Ring, cluster.Node and the packages built on
// them) reports its lifecycle with a sentinel of the same name in its own
// package, and each of those wraps the one here, so a caller can test for
// the kind with either:
//
//	errors.Is(err, gossip.ErrClosed) // this ring was closed
//	errors.Is(err, notp.ErrClosed)   // some part of the node was closed
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
