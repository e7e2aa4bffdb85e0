// Package gossip keeps a cluster's consistent-hash ring in agreement across
// its nodes: notp's GossipRing, with the bugs of the original fixed.
//
//	r, err := gossip.New(k, gossip.Config{FlushPath: "/var/lib/app/ring"}) // k: this node's kernel
//	if err != nil { ... }
//	loaded, err := r.Load() // optional: the state of the last run
//	if err := r.Start(ctx, "ring"); err != nil { ... } // k must be started
//	defer r.Stop(context.Background())
//	_ = r.Meet(ctx, peer) // unite with peer's ring
//	replicas := r.PreferenceList([]byte("user:42"), 3) // who holds a key
//
// Package cluster wires a kernel, a Ring and a command server into a node.
//
// # Model
//
// Two layers share the kernel's one port:
//
//   - memberlist answers "who is alive". Each node in a ring runs a
//     memberlist (Name = node ID, node meta = ring id and kernel host/port)
//     over the kernel's port: streams through the kernel's protocol mux,
//     packets as UDP on the same port number (gossip/internal/mltransport), with
//     a keyring of keys the kernel derives from its stretched cookies
//     ([kernel.Keyring.DeriveKeys]): one per cookie of the kernel's
//     keyring, the primary's used to encrypt, kept in step with the
//     kernel's through a cookie rotation ([Ring.SyncKeys]). Its failure
//     detector gives the
//     health of each member ([Ring.Members], events EventAlive, EventDead,
//     EventMemberLeft) and its push/pull exchange doubles as anti-entropy.
//     Peers of another ring id are refused (different rings never merge).
//   - the ring answers "who owns what" and changes only by explicit
//     operations ([Ring.Insert], [Ring.Remove], …, [Ring.Leave]), as in
//     notp. A node that memberlist declares dead stays in the ring unless
//     [Config.AutoRemoveDeadAfter] is set.
//
// # Lookups
//
// [Ring.View] returns a [View]: a read-only snapshot of the hash ring that
// never changes, so many lookups agree with each other. [View.Owner] names
// a key's owner alone; [View.PreferenceList] (and [Ring.PreferenceList])
// the n nodes that hold it: the owner, then the next distinct nodes
// clockwise from the key. [Ring.Neighbourhood] is notp's find: the owner,
// then the owner's own neighbours ([View.Neighbours]).
//
// # State and merge rules
//
// The replicated state is a ring id, one entry per node and a vector clock.
// An entry is {node, weight, version, writer, removed, time}: the last write
// about that node, live or a tombstone. The hash ring ([Ring.View]) is
// derived from the live entries.
//
// A local change writes the entries it touches with version = current
// version + 1 and writer = this node, and increments this node's own clock
// entry (the clock's actor is the node ID, so each node counts only its own
// changes). Receiving never increments anything, so gossip that merely
// passes through a node does not look like a change of its own.
//
// Merging a received state keeps, per node, the greater entry: higher
// version, then higher writer ID (then the remaining fields, so the order is
// total). Entries win or lose one by one, so concurrent inserts on two
// nodes both survive (notp's whole-ring last-writer-wins lost one of them),
// and a removal made after seeing an insert beats it. The clocks are merged
// (pointwise maximum); when the received clock was concurrent with the local
// one, EventConflict is emitted (the merge itself needs no resolution).
// Merging is commutative,
// associative and idempotent, so replicas that received the same writes in
// any order hold the same state.
//
// A join (sent by [Ring.Meet]) is a union: after the per-entry merge, every
// node live on either side before it is live afterwards (the receiver
// re-adds it with a new version if a tombstone won). That lets a node that
// left or was removed come back by being met, as in notp. memberlist
// push/pull exchanges are plain merges, never joins.
//
// A node's ring of its own (after New, Leave or its removal) holds its own
// entry as a placeholder of version 0, which loses to any write: an admin's
// Insert of that node decides its weight, and a join makes placeholders
// real entries (version ≥ 1). While its own entry is a placeholder a node
// ignores removals of itself and entries about itself no newer than its
// floor (the version of its last leave or removal), and its join carries
// that floor so the receiver writes its entry above it: a node that leaves
// and rejoins at once is not undone by a lagging tombstone or by its own
// pre-leave state still travelling.
//
// Tombstones are kept (and gossiped) for [Config.TombstoneTTL] (24 h), then
// collected by the poll. A replica partitioned for longer than that may
// bring a removed node back.
//
// A node that sees its own entry removed by someone else (the remover sends
// it the new state at once, which notp never did) falls back to a ring of its own
// outside any ring, leaves memberlist and emits EventSelfRemoved. A zombie's
// stale gossip loses against the tombstone, and whoever receives it sends
// the zombie the current state, so it learns of its removal too.
//
// # Messages
//
// Ring messages are kernel casts to the handler "gossip/<ring id>", msgpack
// maps {v, type, ring, round, clock, entries, floor, sum}:
//
//   - join (1): Meet, as a kernel call (the reply acknowledges the merge),
//     with the sender's floor; the receiver unions, answers with its state
//     and spreads it with round ceil(log2 N).
//   - update (2): a state. A receiver merges it and, while round > 0,
//     forwards its own merged state to Fanout (2) random neighbours with
//     round-1, news or not, as notp does. A change's originator starts with
//     round ceil(log2 N) (notp's maxMsgRound), so a change reaches ~90% of
//     the nodes in about log2 N hops without waiting for a poll; the poll
//     repairs the rest within about one Interval. A burst of received
//     messages is merged first and forwarded once.
//   - leave (3): an update whose sender removed itself, sent as a kernel
//     call; the reply acknowledges it.
//   - digest (4): a clock alone; the receiver answers with its state if it
//     has changes the sender lacks, and with pull if the sender has changes
//     it lacks.
//   - pull (5): asks for an update with round 0.
//   - sum (6): the poll. Every [Config.Interval] each node sends one to a
//     random gossip neighbour: a 64-bit FNV-1a checksum of its clock's
//     counts (sum), no clock and no entries. A receiver whose own checksum
//     differs answers with its digest, which the poller answers as above;
//     equal checksums need no answer. A converged cluster so exchanges a
//     few dozen bytes per node and Interval, whatever its size.
//
// Targets are chosen among a node's gossip neighbours that memberlist does
// not report dead or left: ordering the live members by chash.Token(ID, 1),
// the members at distances ±1, ±2, ±4, … (every member in rings of up to 5
// nodes, 2·log2 N in large ones). The relation is symmetric and the graph
// connected with diameter O(log N), so rumours and polls reach everyone
// while the kernel holds O(N log N) links in all instead of N² (with
// [Config.LazyConnect]; by default, as in notp, the kernel is also
// connected to every ring member for the benefit of other components).
// Answers (join replies, digest answers, a zombie's notice) go back to the
// sender. The encoding of the state is cached until the state changes. Every decoded message (and file) is validated: ring
// id, node fields, weights 1..[MaxWeight] (0 allowed on tombstones),
// versions, sizes ([MaxNodes]), rounds (see Limits below); invalid ones
// are counted in Stats.MessagesRejected and never panic.
//
// # Operations
//
// Insert, MInsert, Update, Remove and MRemove follow notp's no-op rules
// (insert: id present; minsert: all present; remove: absent; mremove: none
// present; update always writes). They are applied at once and serialised
// with each other, Meet, Join, Leave and Stop. notp deferred an unforced
// change while ring streams were partly received; here the kernel delivers
// whole messages, so there is nothing to wait for and force only decides
// whether removed nodes' kernel links are closed gracefully (queued
// messages, including the notification, written first) or at once.
//
// [Ring.Leave] announces the removal of this node to random live members
// (as kernel calls, retried on other members until one acknowledges; force
// casts without waiting), leaves memberlist, resets to a ring of its own and
// clears the ring id (EventLeft). [Ring.Join] then re-activates everything
// (handler, a new memberlist, polls). [Ring.Stop] is not a leave, unlike
// notp's stop, so that a restarted node comes back with its ring: it shuts
// memberlist down without a leave message, so the others see the node dead
// (EventDead) but keep it in the ring, and a restart from the flush file
// rejoins. [Ring.Close] is Stop with an ended context.
//
// # When nodes fail
//
// memberlist gossips to a member it declared dead only for its
// GossipToTheDeadTime (30 s on LAN, 15 s local), then forgets it and never
// contacts it again. The reconnect loop ([Config.Reconnect], as serf's
// ReconnectInterval and ReconnectTimeout) makes up for it: every ring
// member that memberlist reports dead, or does not know (after a restart
// from the flush file, or once it forgot a dead member), is joined through
// memberlist at the address the ring records, on a backoff of its own: a
// first retry [ReconnectConfig.First] (2 s) after it died (at once for a
// member never seen since the restart), then doubling up to
// [ReconnectConfig.Interval] (30 s), each delay jittered by ±20 %; at most
// three joins run at a time. When a dead member comes back, every other
// member the loop retries is due at once with its backoff reset (the
// network has likely come back for them too). A split of any length
// therefore heals within about one Interval of the network healing, and
// usually much sooner: every node of both sides retries, and one join that
// gets through is enough for memberlist to spread the rest. A node restarted while cut off from every peer keeps
// trying its ring's members the same way until one answers. Members that
// left (HealthLeft, [Ring.Leave]) or were removed from the ring are never
// retried. Attempts and joins that reached their member are counted in
// Stats.ReconnectAttempts and Stats.Reconnects, and each reached member is
// announced by EventReconnected (EventAlive follows when memberlist takes
// it back).
//
// A member that comes back under its ID at a new address (a rescheduled
// container) is taken back at once: gossip sets memberlist's
// DeadNodeReclaimTime ([DefaultDeadNodeReclaimTime], 1 s, unless
// Config.Memberlist sets one), so memberlist lets the name of a member dead
// for longer than that move to the new address. memberlist never moves the
// name of a live or suspect member, so a running node's identity cannot be
// taken over. The member's own flush-file restart records the new address
// in the ring, and a ring address that differs from the one last tried is
// joined at once, so health follows the ring.
//
// Two horizons bound how long the cluster remembers a failure, both 24 h
// by default and meant to be set together:
//
//   - the reconnect horizon ([ReconnectConfig.Horizon]): a member dead (or
//     unknown) for longer is no longer retried (logged at Warn); it comes
//     back only by contacting the cluster itself (its own loop) or by an
//     operator's meet;
//   - the tombstone horizon ([Config.TombstoneTTL]): a removal is forgotten
//     after it, so a node partitioned away for longer may bring a removed
//     node back into the ring with its stale state.
//
// After an outage longer than these, an operator should remove the nodes
// that are gone for good again (their removals may have expired), and meet
// each returning node from a running one (or restart it with its flush
// file, which retries its ring's members); a node whose ring should not
// come back is best started without its old flush file and met afresh.
//
// # Persistence
//
// With [Config.FlushPath] set, a changed state is written at most once per
// [Config.FlushInterval] and on Stop through a temporary file in the same
// directory (FlushPath + ".tmp…") that is fsynced; the current file is kept
// as FlushPath + ".prev", the temporary file renamed over FlushPath, and
// the directory fsynced. The file is
//
//	msgpack {version: 1, ring, self, clock, entries, floor}
//	"NGS1"                      4 bytes, the trailer's magic
//	CRC-32C of the msgpack      4 bytes, big-endian (Castagnoli)
//
// (a file without the magic is the trailerless layout of earlier releases
// and still loads). [Ring.Load] first removes temporary files a crash left
// behind, then checks the checksum, decodes and validates the state. When
// the file is corrupt (torn, truncated, bit-flipped, invalid) or missing
// while FlushPath + ".prev" is good, the previous file is loaded and a
// warning logged: the node comes back one flush behind, and the merge with
// its peers brings the rest. Otherwise a corrupt file is an error wrapping
// ErrCorrupt. [Ring.Start] then joins memberlist through the loaded members
// and the states merge again. A failed flush (a full disk) leaves the last
// good file in place, is counted in Stats.FlushErrors and retried on the
// next tick; it is logged at Warn once a minute (Debug in between) and at
// Info when flushing works again. The largest state (MaxNodes entries with
// IDs of MaxIDLen and hosts of MaxHostLen bytes) takes about 7 MB, which
// also fits a kernel message (10 MB); Load reads at most 64 MB.
//
// # Limits
//
// A state holds at most [MaxNodes] entries, live and tombstones, and at
// most [Config.MaxTokens] tokens (the sum of the live weights; default
// [DefaultMaxTokens]), both on local changes and on merges. A merge that
// would exceed MaxNodes evicts the oldest tombstones first; live entries
// still beyond a cap are refused (the new or heavier ones, largest node ID
// first, so that every replica refuses the same), reported by
// [EventRefused] and counted in Stats.EntriesRefused. A local change
// beyond a cap fails with [ErrRingFull] and changes nothing. Decoding
// enforces the same bounds before allocating (at most MaxNodes entries,
// each backed by the 13 bytes of the smallest valid entry, and MaxNodes
// clock entries), so anything a node may hold it can send, persist and
// load again, and a message of a million nil entries costs nothing. The
// message and flush-file codecs live in gossip/internal/codec, which
// imports neither memberlist nor the kernel, so their fuzz targets link
// little and run fast.
// Entry versions, clock counts and floors above 2^53 (beyond what a JSON
// or JavaScript peer represents exactly) are rejected. A clock that counts
// more changes by this node than it made is rejected too, once this node
// has made a change since it started, loaded its file or was reset: a
// peer cannot advance our own counter (before that, a higher count is
// what a node that lost its state should learn).
//
// With LazyConnect false, gossip opens kernel links to ring members ahead
// of need, but never beyond [Config.MaxLinks] links (default
// [DefaultMaxLinks]); other members are connected on first send
// (Stats.LinksDeferred). Gossip sends only to its O(log N) neighbours and
// to the senders it answers, so the bound holds the kernel's outbound
// links to about MaxLinks + 2·log2 N.
//
// A panic in the loop goroutine (handling a message, a poll, a flush) or
// in merging a memberlist push/pull is recovered, logged at Error with its stack and counted in Stats.Panics;
// the loop goes on with the next message.
//
// # Events
//
// [Ring.Subscribe] returns a buffered channel (a buffer ≤ 0 gets 64
// slots). Publishing never blocks: when a subscriber's channel is full the
// event is dropped and counted in Stats.EventsDropped.
// Kinds: EventInserted, EventRemoved, EventUpdated (weight or address;
// notp's process was silent on these), EventConflict, EventSelfRemoved,
// EventLeft, EventAlive, EventDead, EventMemberLeft (memberlist health of
// ring members), EventSend, EventRefused (entries refused by a full
// ring) and EventReconnected (the reconnect loop reached a dead or unknown
// member). memberlist v0.6.0 offers no hook for
// suspicion, so EventSuspect is reserved and never emitted.
//
// # Fast convergence in tests
//
// Use a memberlist base config with short intervals (DefaultLocalConfig
// with ProbeInterval, GossipInterval and PushPullInterval of tens of
// milliseconds; EnableCompression false saves CPU with many in-process
// nodes) and a short [Config.Interval] (the checksum poll, which bounds how long
// the nodes a rumour missed wait). Changes themselves spread without
// waiting for either. For hundreds of nodes in one process set
// [Config.LazyConnect].
//
// # Concurrency
//
// All methods are safe for concurrent use. Admin and lifecycle operations
// are serialised by one lock and perform their sends on the caller's
// goroutine; Meet waits for the met node's acknowledgement and Leave for a
// member's (bounded by ctx, or CallTimeout when ctx has none). The loop
// goroutine never waits for that lock (a node's admin call may be waiting
// for another node's loop), so a self-removal noticed there is applied as
// soon as the lock is free. The kernel handler only queues received messages (1024; more
// are dropped and counted); one goroutine per Ring processes them in order
// and runs the poll and flush tickers. memberlist callbacks merge push/pull
// states directly and update health under short locks; no lock of this
// package is held while calling memberlist or sending. [Ring.View] reads an
// atomically published ring and never blocks. Stop waits for every
// goroutine the Ring started. A received message costs O(entries) to decode
// and merge; a change costs O(changed nodes × tokens) to publish a new
// ring (copy-on-write clone plus the changes). There are no per-node
// timers besides one poll and one flush ticker.
package gossip
