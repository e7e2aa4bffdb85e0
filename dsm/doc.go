// Package dsm is notp's distributed semaphore manager: counting semaphores
// on string IDs, each held by the node that owns its ID on the ring, with
// per-holder TTLs.
//
// Every node runs a DSM under the same Config.Name; each is an owner (a
// genserver of that name on the node's kernel) and a client.
//
//	s, _ := dsm.New(node, dsm.Config{Dir: "data/dsm"})
//	_ = s.Start(ctx)
//	defer s.Stop(ctx)
//	_ = s.Create(ctx, "exports", 4)                // at most 4 at a time
//	if err := s.Post(ctx, "exports", "job-9", time.Minute); err == nil {
//		defer s.Close(ctx, "exports", "job-9")
//		// ...
//	}
//
// # Semantics
//
// A semaphore lives on one node, the ring owner of its ID (no
// replication, as in notp). Create(id, n) creates it (again with the same
// n is fine; another n is an error: "Semaphore '<id>' already exist with
// n equal to <n>."); Read returns {N, Active}; Destroy deletes it and its
// holders (a missing one is fine); Post(id, holder, ttl) takes a place
// for ttl (a holder already in is fine, its TTL not renewed); Close
// gives it up; CloseAsync casts the Close. Requests on a missing
// semaphore fail with "Semaphore '<id>' does not exist." (CodeNotFound).
// A full semaphore makes Post wait a random [MinWait, MaxWait) and try
// again, up to Config.Retries or its ctx; a grant that came back after
// its ttl is given back and counts as a failed attempt; exhausted retries
// give a [*PostError] ("Failed to grab semaphore <id> with holder
// <holder>.") wrapping ErrRetriesExhausted. Other errors are not retried.
//
// # Ownership changes
//
// When the ring changes, the old owner of each semaphore hands it (its
// limit and live holders with the time they have left) to the new owner,
// then drops its copy; it also checks every HandoffInterval, so a handoff
// that failed is retried. Meanwhile the old owner refuses requests for it
// (CodeNotOwner) and the new owner answers requests for semaphores it
// does not have yet with CodeMoving for 3 HandoffIntervals plus one
// hand-off call's timeout after a ring change; clients retry both, looking the owner up again, until their
// ctx ends. A handoff to a node that already has the semaphore merges:
// the receiver keeps its limit and adds the holders it lacks; a copy the
// old owner changed after sending it is kept and handed off again, and a
// semaphore is never sent twice at once. So a membership change neither
// loses nor doubles a semaphore. It errs on the side of a holder too
// many: a Close that reaches the new owner before the copy with that
// holder finds nothing to close, and the holder, arriving with the copy,
// keeps its place until its TTL. A node
// removed from the ring (or that left it) falls back to a ring of its
// own; its DSM keeps using the last ring it shared, minus itself, so it
// hands everything to the nodes that took over its share.
//
// # Failures
//
// An owner that memberlist reports dead fails requests at once with
// ErrOwnerDown: its semaphores are unavailable until it comes back (from
// its Dir) or the ring drops it (they are then lost unless it comes back
// and hands them off). Malformed requests from peers get a
// kernel.RemoteError with CodeBadRequest and change nothing; an owner
// full (MaxSemaphores) answers CodeFull, one that cannot persist
// CodeStorage.
//
// # Persistence
//
// With Config.Dir an owner keeps its semaphores in a durable table
// (package table), every change fsynced before it answers, in notp's
// layout: "SEMAPHORES::<id>" -> n and "SEMAPHORE_HOLDERS::<id>" -> a hash
// of holder -> {start, timeout} (wall-clock Unix ms and ms). Start loads
// both families in either order, restoring each holder with the time it
// has left and dropping holders of no semaphore. Stop keeps the table
// (notp's Stop cleared it) and does not hand off: a restarted node owns
// its semaphores again.
//
// # Metrics
//
// [DSM.Stats] counts the semaphores this node owns and what its client
// and hand-offs did. From Start to Stop they are also on the node's
// Prometheus metrics (cluster.Node.Metrics, served at
// cluster.Config.MetricsAddr), labelled name=<Config.Name>:
// notp_dsm_semaphores and notp_dsm_holders (gauges: owned now),
// _posts_total{result} (ok, full, failed), _closes_total,
// _handoffs_total{result} (sent, failed) and _handoffs_received_total
// (counters).
//
// # Concurrency
//
// All methods are safe for concurrent use. An owner's state belongs to
// its genserver's actor goroutine; handoffs are sent by a goroutine of
// the DSM so that two owners handing off to each other never wait on each
// other's actor. Stop and StopNow stop and wait for the DSM's goroutines
// (ring watcher, sweep and rebalance tickers, handoff sender). A DSM
// cannot be restarted after Stop or StopNow: build a new one on the same
// Dir.
//
// # Stopping at once
//
// The module's long-lived types have Close() for an immediate stop beside
// Stop(ctx), but a DSM's Close(ctx, id, holder) is the semaphore
// operation, so its immediate stop is [DSM.StopNow]: the owner's queued
// requests are answered with genserver.CodeStopped instead of handled,
// and only real errors (a table that did not close cleanly) are returned.
//
// # Layout
//
// The owner protocol (event names, payloads including the handoff, and
// decoders that bound and validate what a peer sends) is in
// dsm/internal/wire, a leaf package whose fuzz targets link nothing of
// the node. The lifecycle (genserver, table, the DSM's goroutines,
// metrics source), the shared Config fields' defaults and checks and the
// retry waits come from internal/replicated, which package dlm uses too.
package dsm
