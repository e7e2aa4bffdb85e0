package dlm

import (
	"sync/atomic"

	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/metrics"
)

// Stats are a DLM's counters: the client's on this node (locks it took
// and released, whatever the replicas) and its replica's (the locks this
// node grants its share of).
type Stats struct {
	// RLocksGranted and WLocksGranted count RLock and WLock calls that
	// returned a lock; RLocksRefused and WLocksRefused those that failed
	// after trying (AcquireError, or ctx ended), not those refused for
	// their arguments or a stopped DLM.
	RLocksGranted, WLocksGranted uint64
	RLocksRefused, WLocksRefused uint64
	// RUnlocks and WUnlocks count releases done: RUnlock and WUnlock
	// calls that reached a quorum, and Async releases sent to every
	// replica.
	RUnlocks, WUnlocks uint64
	// Attempts counts tries of RLock and WLock (one round of votes each);
	// Retries those that followed a failed try.
	Attempts, Retries uint64
	// QuorumFailures counts tries and synchronous releases that fewer than
	// a quorum of replicas granted, recorded or answered.
	QuorumFailures uint64
	// HeldLocks is the number of lock IDs this node's replica holds now
	// (a write lock, or read locks of one or more holders).
	HeldLocks int64
	// TokensRecorded counts fencing tokens this node's replica recorded.
	TokensRecorded uint64
}

// counters are the atomics behind Stats.
type counters struct {
	granted, refused, released [2]atomic.Uint64 // [write]
	attempts, retries          atomic.Uint64
	quorumFailures             atomic.Uint64
	held                       atomic.Int64
	tokens                     atomic.Uint64
}

// mode indexes counters' per-mode arrays.
func mode(write bool) int {
	if write {
		return 1
	}
	return 0
}

// Stats returns the DLM's counters.
func (d *DLM) Stats() Stats {
	c := &d.stats
	return Stats{
		RLocksGranted: c.granted[0].Load(), WLocksGranted: c.granted[1].Load(),
		RLocksRefused: c.refused[0].Load(), WLocksRefused: c.refused[1].Load(),
		RUnlocks: c.released[0].Load(), WUnlocks: c.released[1].Load(),
		Attempts: c.attempts.Load(), Retries: c.retries.Load(),
		QuorumFailures: c.quorumFailures.Load(),
		HeldLocks:      c.held.Load(), TokensRecorded: c.tokens.Load(),
	}
}

// collect is the DLM's metrics.Source, registered on the node's metrics
// while the DLM is started.
func (d *DLM) collect(emit func(metrics.Sample)) {
	st := d.Stats()
	e := replicated.Emitter{Emit: emit, Prefix: "notp_dlm_", Name: d.cfg.Name}
	read, write := metrics.Label{Name: "mode", Value: "read"}, metrics.Label{Name: "mode", Value: "write"}
	const (
		grantedHelp  = "Locks this node took from a quorum of replicas, by mode."
		refusedHelp  = "Lock requests of this node that failed after trying, by mode."
		releasedHelp = "Locks this node released (a quorum answered, or sent to every replica), by mode."
	)
	e.Counter("locks_granted_total", grantedHelp, st.RLocksGranted, read)
	e.Counter("locks_granted_total", grantedHelp, st.WLocksGranted, write)
	e.Counter("locks_refused_total", refusedHelp, st.RLocksRefused, read)
	e.Counter("locks_refused_total", refusedHelp, st.WLocksRefused, write)
	e.Counter("locks_released_total", releasedHelp, st.RUnlocks, read)
	e.Counter("locks_released_total", releasedHelp, st.WUnlocks, write)
	e.Counter("attempts_total", "Tries of lock requests (one round of votes each).", st.Attempts)
	e.Counter("retries_total", "Tries that followed a failed try.", st.Retries)
	e.Counter("quorum_failures_total", "Tries and releases fewer than a quorum of replicas granted, recorded or answered.", st.QuorumFailures)
	e.Counter("tokens_recorded_total", "Fencing tokens this node's replica recorded.", st.TokensRecorded)
	e.Gauge("replica_locks", "Lock IDs this node's replica holds now.", st.HeldLocks)
}
