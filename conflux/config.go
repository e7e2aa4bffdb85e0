package conflux

import (
	"fmt"
	"log/slog"
	"time"
)

// Reducer computes the state after an action. It must be pure and total:
// the same (state, action) gives the same result on every node, it must
// not modify state in place (return a new value; states are shared with
// readers and snapshots), and it must accept any action, re-checking the
// invariants a Method checked (a Method's check is advisory across leader
// changes). S and A must be msgpack-encodable.
type Reducer[S, A any] func(state S, action A) S

// Method turns a request into an action. It runs on the leader only,
// against the provisional state (the committed state plus the leader's
// actions in flight), with args the msgpack encoding of Perform's args.
// Returning ErrNoAction dispatches nothing; any other error reaches the
// caller and dispatches nothing. It must not block: methods run one at a
// time.
type Method[S, A any] func(state S, args []byte) (A, error)

// Config configures a Store. New copies it; the zero value of each
// optional field selects the documented default.
type Config[S, A any] struct {
	// Name names the group: one Raft group per name, served on each node
	// by the genserver "conflux.<Name>". Required; at most 128 bytes.
	Name string
	// Methods are the operations Perform may name. Required (non-empty).
	Methods map[string]Method[S, A]
	// Reduce applies a committed action to the state. Required.
	Reduce Reducer[S, A]
	// Initial is the state before the first action (the zero S if unset).
	Initial S
	// Storage holds the log, the Raft metadata and the snapshots:
	// InMemory() or OnDisk(dir). nil = InMemory().
	Storage Storage
	// Voters is the target number of voters; further members of the group
	// are non-voters (they replicate and serve reads, but do not vote).
	// 0 = 3. Odd numbers tolerate the most failures per voter.
	Voters int
	// BootstrapExpect forms a new group once this many ring members run
	// it (this node among the lowest-ID ones): each of them bootstraps
	// the same voter set. 0 = never bootstrap: the node waits until the
	// leader of an existing group adds it.
	BootstrapExpect int
	// Errors are sentinel errors Methods return: a caller on another node
	// gets a *MethodError that wraps the first one its error matched with
	// errors.Is, so errors.Is works across nodes. Every node should list
	// the same errors in the same order (matched by position).
	Errors []error

	// HeartbeatTimeout and ElectionTimeout: how long a follower (a
	// candidate) waits without a leader before it starts an election.
	// 0 = 1 s each. Shorter fails over faster and costs more traffic and
	// spurious elections on a loaded machine.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without
	// reaching a quorum; 0 = half the HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long an idle leader waits before a heartbeat
	// carrying the commit index; 0 = 10 ms (lower is faster follower
	// applies at more idle traffic).
	CommitTimeout time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// make the next snapshot (checked every SnapshotInterval, randomized
	// up to twice that); 0 = 8192. SnapshotInterval 0 = 5 s: the log
	// between snapshots is what a busy group holds beyond its state (in
	// memory with InMemory, where at 50,000 commits/s a 30 s interval
	// let it reach millions of entries and the garbage collector's work
	// swing with it), while a snapshot still needs SnapshotThreshold new
	// entries, so a quiet group takes none. TrailingLogs, the entries
	// kept after a snapshot so slightly late followers need no snapshot,
	// 0 = 4096.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// PerformTimeout bounds Perform and Read when their ctx has no
	// deadline; 0 = 10 s.
	PerformTimeout time.Duration
	// ReconcileInterval is how often the leader reconciles the group with
	// the ring (and a bootstrapping node looks for its peers), besides
	// every ring event; 0 = 2 s.
	ReconcileInterval time.Duration
	// MaxSessions bounds the request-ID table (one entry per client that
	// used WithRequestID; the least recently used is forgotten first);
	// 0 = 4096. A client forgotten by the table loses its at-most-once
	// guarantee for retries older than its eviction.
	MaxSessions int
	// MaxPending bounds Performs and Reads waiting on this node (local
	// and forwarded ones); over it they fail at once with an error
	// ErrOverloaded. 0 = 4096.
	MaxPending int
	// Logger receives the store's and Raft's logs; nil discards.
	Logger *slog.Logger
}

// MaxNameLen bounds Config.Name.
const MaxNameLen = 128

func (c *Config[S, A]) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Storage == nil {
		c.Storage = InMemory()
	}
	if c.Voters <= 0 {
		c.Voters = 3
	}
	def(&c.HeartbeatTimeout, time.Second)
	def(&c.ElectionTimeout, time.Second)
	def(&c.LeaderLeaseTimeout, c.HeartbeatTimeout/2)
	def(&c.CommitTimeout, 10*time.Millisecond)
	def(&c.SnapshotInterval, 5*time.Second)
	def(&c.PerformTimeout, 10*time.Second)
	def(&c.ReconcileInterval, 2*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 4096
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 4096
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config[S, A]) validate() error {
	switch {
	case c.Name == "" || len(c.Name) > MaxNameLen:
		return fmt.Errorf("%w: Name must be 1..%d bytes", ErrInvalidConfig, MaxNameLen)
	case len(c.Methods) == 0:
		return fmt.Errorf("%w: no Methods", ErrInvalidConfig)
	case c.Reduce == nil:
		return fmt.Errorf("%w: no Reduce", ErrInvalidConfig)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("%w: negative BootstrapExpect", ErrInvalidConfig)
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("%w: LeaderLeaseTimeout above HeartbeatTimeout", ErrInvalidConfig)
	}
	for m, f := range c.Methods {
		if f == nil {
			return fmt.Errorf("%w: method %q is nil", ErrInvalidConfig, m)
		}
	}
	return nil
}

// Consistency selects how fresh a Read is.
type Consistency uint8

const (
	// Stale reads this node's committed state at once: it may lag the
	// leader (a follower) or miss writes of a newer leader (a
	// partitioned old leader).
	Stale Consistency = iota
	// Linearizable reads a state that includes every write acknowledged
	// before Read was called (a ReadIndex: the leader confirms its
	// leadership with a quorum; this node waits until it has applied the
	// leader's commit index). No clocks are trusted.
	Linearizable
)
