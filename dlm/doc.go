// Package dlm is notp's distributed lock manager: read/write locks on
// string IDs, replicated over the ring's preference list, granted by a
// quorum of replicas, with per-holder TTLs and fencing tokens for write
// locks.
//
// Every node runs a DLM under the same Config.Name; each is a replica (a
// genserver of that name on the node's kernel) and a client.
//
//	d, _ := dlm.New(node, dlm.Config{Dir: "data/dlm"})
//	_ = d.Start(ctx)
//	defer d.Stop(ctx)
//	l, err := d.WLock(ctx, "nightly-report", "worker-7", 30*time.Second)
//	if err != nil { ... } // not acquired
//	// work for at most l.Validity, passing l.Token to the storage it writes
//	_ = d.WUnlock(ctx, "nightly-report", "worker-7")
//
// # Algorithm
//
// A lock's replicas are the first Config.Replicas (3) distinct nodes of
// the ring's preference list for its ID. An attempt sends rlock or wlock
// {id, holder, timeout} to all of them in parallel, bounded by the ttl and
// the request's ctx. A replica grants a read lock unless a write lock is
// held (a holder that already reads is granted again, its TTL not
// extended) and a write lock only when no lock at all is held (not
// re-entrant, as in notp). Each grant lasts its own TTL on the replica.
// The attempt succeeds when a quorum (Config.Quorum, default a majority of
// the replicas) granted and, for a write lock, recorded the fencing token
// (below), and some validity is left:
//
//	Validity = ttl - elapsed - (ttl*DriftFactor + 2ms)
//
// Otherwise the attempt sends the unlock to every replica (casts: a lost
// one is released by the TTL), waits a random time in [MinWait, MaxWait)
// and tries again, recomputing the preference list, until Config.Retries
// attempts or the ctx end. Exhausted retries give an [*AcquireError]
// ("Failed to acquire wlock, retry count exhausted.") wrapping
// ErrRetriesExhausted and the last attempt's reason; an ended ctx gives
// its error. Unlocks go to every replica and succeed when a quorum
// answered (a replica without the lock has nothing to release); the
// Async variants cast and return at once.
//
// # Fencing tokens
//
// Every successful WLock of an ID returns a Token strictly greater than
// every token returned for that ID before, as long as no quorum of the
// ID's replicas loses its disk (Config.Dir), and clocks run at rates within
// DriftFactor of each other. When the ring changes, an ID can move to
// replicas that never saw its tokens (and, like any quorum lock, to a
// quorum that does not know its current holder). A token is therefore
// never smaller than the time it is chosen at: Config.Now in microseconds
// since 1970, read once a quorum granted the lock. Across a ring change
// that moves an ID to replicas which never saw its tokens, tokens keep
// growing only if the two clients' clocks differ by less than the time
// between the two WLock calls (to be exact, between the moments their
// tokens are chosen); otherwise their order is not guaranteed.
//
// How: each replica keeps one durable counter, the largest token recorded
// on it. A write-lock grant reports the counter (phase 1); the client
// takes token = max(max(reported)+1, the time in µs) and sends
// commit{id, holder, token} to the granting replicas (phase 2); a replica
// records it (counter = max(counter, token), on disk before it answers)
// only while that holder still holds the lock there. WLock returns only
// after a quorum recorded it. Why it holds: two successful write locks X
// then Y of one ID have recording quorums that share a replica r. At r
// their holds are disjoint in time; Y's cannot come first, since Y returns
// only with validity left, so before its hold at r expires and before X
// could be granted there; so Y was granted at r after X recorded its token
// there, and r reported a counter ≥ X's token to Y. Read locks have Token
// 0. Give the token to the resource the lock guards and have it refuse
// writes with a smaller token than it has seen: that is what protects it
// from a holder that paused past its validity.
//
// # Failures
//
// A replica that errors, times out or is refused counts as a failed vote,
// not an abort; an attempt returns as soon as a quorum granted or can no
// longer grant, cancelling the calls still out, so a hanging replica does
// not slow locking. Replicas memberlist reports dead (or left) are not
// asked. Every partial grant is released. Bad requests from peers (not a
// map, over 576 bytes, wrong field types, empty or oversized names, a TTL
// outside [1ms, MaxTTL]) are answered with a kernel.RemoteError with
// CodeBadRequest and change nothing; a replica full (MaxLocks,
// MaxHolders) answers CodeFull, one that cannot persist CodeStorage.
//
// # Persistence
//
// With Config.Dir a replica keeps its locks and counter in a durable table
// (package table) in notp's layout: a write lock is a scalar under its ID
// ({holder, start, timeout, token}), a read lock a hash of holder ->
// {start, timeout}, start in wall-clock Unix ms. Start restores every lock
// with the time it has left (by the wall clock; a replica down longer than
// a TTL finds that lock expired) and drops undecodable entries. Stop keeps
// the table (notp's Stop cleared it). Expired locks are refused from the
// moment they expire and dropped from memory and disk every SweepInterval.
//
// # Metrics
//
// [DLM.Stats] counts this node's lock requests and its replica's holds.
// From Start to Stop they are also on the node's Prometheus metrics
// (cluster.Node.Metrics, served at cluster.Config.MetricsAddr), labelled
// name=<Config.Name>: notp_dlm_locks_granted_total{mode},
// _locks_refused_total{mode}, _locks_released_total{mode} (read, write),
// _attempts_total, _retries_total, _quorum_failures_total,
// _tokens_recorded_total (counters) and notp_dlm_replica_locks (a gauge:
// lock IDs this node's replica holds now).
//
// # Concurrency
//
// All methods are safe for concurrent use. A replica's state is owned by
// its genserver's actor goroutine: requests are handled one at a time, in
// the order each peer sent them. RLock and WLock block until granted, ctx
// ends (Config.Timeout applies when it has no deadline) or retries run
// out; the calls of an attempt run in parallel goroutines that the attempt
// waits for. Stop(ctx) lets the replica answer what is queued until ctx
// ends; Close stops at once (Stop with an ended context). A DLM cannot be
// restarted after Stop or Close: build a new one on the same Dir.
//
// # Layout
//
// The replica protocol (event names, payloads, and decoders that bound
// and validate what a peer sends) is in dlm/internal/wire, a leaf package
// whose fuzz targets link nothing of the node. The lifecycle (genserver,
// table, sweeper, metrics source), the shared Config fields' defaults and
// checks and the retry waits come from internal/replicated, which package
// dsm uses too.
package dlm
