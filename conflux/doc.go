// Package conflux replicates a state machine across the nodes of a notp
// cluster with Raft (github.com/hashicorp/raft), on the node's own port.
//
// # Programming model
//
// A group (Config.Name) has a state S and actions A. Methods turn
// requests into actions; a Reducer applies committed actions to the
// state:
//
//	s, _ := conflux.New(node, conflux.Config[int, int]{
//		Name:    "counter",
//		Reduce:  func(n, d int) int { return n + d },
//		Methods: map[string]conflux.Method[int, int]{
//			"add": func(n int, args []byte) (int, error) {
//				var d int
//				if err := msgpack.Unmarshal(args, &d); err != nil {
//					return 0, err
//				}
//				return d, nil
//			},
//		},
//		Storage:         conflux.OnDisk(dir),
//		BootstrapExpect: 3,
//	})
//	_ = s.Start(ctx)
//	defer s.Stop(ctx)
//	d, err := s.Perform(ctx, "add", 5) // from any node
//	n := s.State()                      // includes the write
//
// [Store.Perform] may be called on any node: a follower forwards it to
// the leader through the kernel (the genserver "conflux.<Name>"). The
// leader runs the Method against its provisional state (the committed
// state plus its own actions in flight), appends the action, and answers
// once it is committed; the calling node returns after applying it
// itself, so State right after Perform shows the write. After winning an
// election the leader applies a barrier before it runs any Method, so
// Methods never see a state missing entries of older terms. Methods run
// one at a time on the leader, in batches of the Performs queued
// meanwhile, and must not block. The log holds actions
// in the order their Methods ran, so a Method that saw an in-flight
// action (a read through the log, a write computed from an earlier one)
// commits only if that action commits, and after it; Raft still appends
// each batch in one storage write. Their validation is advisory: across
// leader changes the Reducer must be total and re-check invariants.
// [Store.Subscribe] calls a function for every applied action in log
// order; [Store.SubscribeEvents] returns a channel of events (role
// changes, members joining and leaving, snapshots and restores), one per
// subscriber, each receiving every event ([Store.Events] is one such
// channel shared by its callers).
//
// # Reads
//
//   - [Store.State] and Read(ctx, Stale): this node's committed state, at
//     once; a follower may lag, and a partitioned old leader may miss
//     newer writes.
//   - [Store.ProvisionalState]: committed plus not yet committed actions
//     (on the leader its in-flight actions; on a follower the entries it
//     stored beyond its applied index). They may still be lost.
//   - Read(ctx, Linearizable): a ReadIndex. The leader applies a barrier
//     once per term, takes its commit index, confirms with a quorum that
//     it is still the leader, and the reading node (leader or follower,
//     which asks the leader for the index) waits until it has applied
//     that index. The state returned includes every write acknowledged
//     before Read was called. No lease reads: they depend on bounded
//     clock drift.
//
// # Errors and retries
//
//   - A Method's error: returned unchanged on the leader; on another node
//     a *[MethodError] that wraps the matching sentinel of Config.Errors,
//     so errors.Is works across nodes. Nothing was appended.
//   - [ErrNoAction], [ErrUnknownMethod], [ErrStaleRequest],
//     [ErrOverloaded]: nothing was appended.
//   - [ErrNoLeader] (wrapping ctx's error, and the last refusal seen, if
//     any: a leader's [ErrOverloaded], a *[NotLeaderError] or the
//     kernel's error): no leader answered in time; nothing was appended;
//     retry later.
//   - *[NotLeaderError]: calls that do not forward (TransferLeadership on
//     a follower); it names the known leader.
//   - [ErrUnknownOutcome]: the action may or may not commit (ctx expired,
//     the connection to the leader dropped, or the leader lost its
//     leadership after appending). Retry only with a request ID
//     ([WithRequestID]): the group records each client's latest request
//     in a bounded table and applies a request at most once, answering a
//     retry with the recorded action.
//   - [ErrClosed]: the store is stopped (Stop, or Close, which stops at
//     once without letting the genserver answer the requests queued at it).
//
// Perform retries by itself only where nothing can have been appended: a
// leader change before the request reached Raft, no leader yet, or a
// leader the kernel could not send to.
//
// # Membership
//
// Membership follows the gossip ring. Ring members that run the group
// (they answer the group's genserver; others answer unknown-name) are
// added by the leader as non-voters and promoted to voters once caught up
// (within 64 entries of the commit index) and alive, while the group has
// fewer than Config.Voters voters. A node removed from the ring leaves the
// group; a node that is only unreachable stays, so that a partition cannot
// shrink the quorum. With Config.BootstrapExpect = N, a new group forms
// once N ring members run it without a configuration: the N lowest IDs
// among them bootstrap the same voter set, and only when all N report the
// same set. A node that starts later, or with BootstrapExpect 0, waits to
// be added. A leader removed from the ring hands its leadership over, so
// that the new leader removes it.
//
// # Storage
//
// [InMemory] keeps everything in memory (tests, caches). [OnDisk] keeps
// the log and Raft's metadata in a bbolt file (raft-boltdb/v2, fsynced on
// every append batch) behind a cache of the last 512 entries, and
// snapshots in files. Snapshots encode the state with msgpack every
// SnapshotThreshold entries (checked every SnapshotInterval); the log is
// then compacted to TrailingLogs entries, and a follower too far behind
// receives the snapshot instead of the log.
//
// # Transport security
//
// Raft connections use the node's port with protocol byte [Proto],
// pooled by Raft's NetworkTransport over kernel authenticated streams
// (kernel.Kernel.ListenAuth, DialAuth): a mutual challenge-response with
// a key derived from the cluster cookie (the dialer proves first; nothing
// derived from the cookie reaches a peer that has not proved), then every
// byte in AES-256-GCM records with per-direction keys and counter nonces,
// inside TLS when the kernel runs TLS. A node without the cookie can
// neither join a group nor inject, replay or alter its traffic. Kernels
// without a cookie (Insecure) use plain streams. After the handshake the
// dialer names the group, so several groups share one port.
//
// # Operator view
//
// While a node runs at least one group, its command server answers the
// raft command (command.Raft, contributed through
// cluster.Node.HandleCommand), which notp-cli sends as
// "notp-cli raft peers|transfer|remove-peer|snapshot [--group NAME]". The
// request names the group; it may leave it out when the node runs only
// one. Like every command it is refused to ring members unless the node
// allows member commands, runs within the node's command timeout, and
// transfer, remove-peer and snapshot are logged at Info as mutating
// commands.
//
//   - peers: the group's latest configuration (each server's ID, address,
//     suffrage, whether it leads, and the applied index its store reports
//     within 500 ms, absent when it does not answer), and this node's
//     state, term, last log index, commit and applied indices.
//   - transfer [to]: Raft's leadership transfer, to the voter to or to the
//     most up-to-date one. Leader only.
//   - remove-peer <id>: Raft's RemoveServer. Leader only; it refuses to
//     remove the last voter. It is for a server that is gone but still a
//     ring member (a dead machine holding a voter slot): a ring member
//     that still runs the group and answers is added back as a non-voter
//     by the leader's membership loop, and a node removed from the ring
//     leaves the group by itself.
//   - snapshot: take a snapshot on this node now (it fails when nothing
//     was applied since the last one).
//
// On a follower, transfer and remove-peer fail with code NOT_LEADER and
// a message naming the leader.
//
// # Budgets
//
// Performs and Reads waiting on a node (its own and those forwarded to
// it) are bounded by Config.MaxPending (ErrOverloaded past it), the
// request-ID table by Config.MaxSessions, a follower's ProvisionalState
// by 1024 entries, each event subscription by its channel's buffer (a
// buffer ≤ 0 gets 64 slots; publishing never blocks, so a full channel
// loses the event), forwarded requests by the kernel's frame and stream
// limits, and Raft stream handshakes by the kernel's. [Store.Stats]
// counts what was refused or dropped.
//
// # Metrics
//
// A started store reports its group on the node's Prometheus metrics
// (cluster.Node.Metrics, served at cluster.Config.MetricsAddr), labelled
// group="<Name>", until Stop: notp_conflux_state{state} (1 for this
// node's Raft state: follower, candidate, leader, shutdown), _term,
// _commit_index, _applied_index, _last_log_index, _last_snapshot_index,
// _voters, _nonvoters, _pending (gauges); _leader_changes_total,
// _performs_total{outcome} (ok, unknown_outcome, overloaded, not_leader,
// no_leader, closed, refused, timeout, method_error),
// _reads_total{consistency} and _reads_failed_total{consistency} (stale,
// linearizable), _snapshots_total, _restores_total, _overloaded_total,
// _events_dropped_total (counters); and the histogram
// notp_conflux_perform_duration_seconds of every Perform's duration. They
// are read at scrape time; counting costs a few atomic adds per Perform.
//
// # Concurrency
//
// All methods of Store are safe for concurrent use. Reducers and
// Subscribe functions run on Raft's apply goroutine, one action at a time;
// Methods run on the leader one at a time, on the goroutine of a Perform
// or of the store's drainer (below); neither may block.
//
// A Perform on the leader queues its request; if nothing is running the
// queue, it runs it itself: the queued Methods one after the other, then
// their actions enqueued in Raft back to back. So a Perform on an idle
// leader wakes no other goroutine to append its action, and under load
// one goroutine runs each batch; what is queued once a Perform's own
// request has run is left to a drainer goroutine, so no caller waits
// while it serves others. The Perform then sleeps
// once, on its request's channel, until the waiter goroutine sees the
// action applied. Its allocations are few and small
// (the encoded arguments, the log entry and, on every node, the decoded
// action, besides Raft's own): encoders, the apply decoder and the
// requests' channels are reused, since the garbage collector's work
// grows with the allocation rate (and an in-memory log keeps the heap it
// scans large).
package conflux
