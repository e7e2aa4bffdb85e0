package conflux

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/notp-go/notp/metrics"
)

// performOutcomes are the values of the "outcome" label of
// notp_conflux_performs_total; outcome picks one for a Perform's error.
var performOutcomes = [...]string{
	"ok",
	"unknown_outcome", // ErrUnknownOutcome: the action may have committed
	"overloaded",      // ErrOverloaded: Config.MaxPending was reached
	"not_leader",      // *NotLeaderError
	"no_leader",       // ErrNoLeader: no leader answered in time
	"closed",          // ErrClosed
	"refused",         // ErrUnknownMethod, ErrNoAction, ErrStaleRequest
	"timeout",         // the caller's ctx ended (committed, not yet applied here)
	"method_error",    // a Method's error, or arguments that do not encode
}

// storeMetrics are the counters a Store keeps for package metrics, beyond
// Stats and what Raft reports.
type storeMetrics struct {
	performs      [len(performOutcomes)]atomic.Uint64
	reads         [2][2]atomic.Uint64 // [Consistency][failed]
	latency       metrics.LatencyHistogram
	leaderChanges atomic.Uint64
	snapshots     atomic.Uint64 // snapshots this node's FSM took
	restores      atomic.Uint64 // snapshots this node's FSM restored

	unregister func()         // removes the source; set by Start, under Store.mu
	leaderObs  *raft.Observer // counts leader changes
}

// outcome returns the index in performOutcomes of a Perform's error: the
// first case that matches wins.
func outcome(err error) int {
	if err == nil {
		return 0 // before nl, which errors.As moves to the heap
	}
	var nl *NotLeaderError
	switch {
	case errors.Is(err, ErrUnknownOutcome):
		return 1
	case errors.Is(err, ErrNoLeader):
		return 4 // before the refusals, which a timed-out ErrNoLeader wraps (its last one)
	case errors.Is(err, ErrOverloaded):
		return 2
	case errors.As(err, &nl):
		return 3
	case errors.Is(err, ErrClosed):
		return 5
	case errors.Is(err, ErrUnknownMethod), errors.Is(err, ErrNoAction), errors.Is(err, ErrStaleRequest):
		return 6
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return 7
	}
	return 8
}

// observePerform counts a Perform that began at start and ended with
// *err; deferred by Perform.
func (s *Store[S, A]) observePerform(start time.Time, err *error) {
	s.met.latency.Observe(time.Since(start))
	s.met.performs[outcome(*err)].Add(1)
}

// observeRead counts a Read of consistency c ending with *err; deferred
// by Read.
func (s *Store[S, A]) observeRead(c Consistency, err *error) {
	if int(c) >= len(s.met.reads) {
		return
	}
	failed := 0
	if *err != nil {
		failed = 1
	}
	s.met.reads[c][failed].Add(1)
}

// countEvent counts the events that metrics report; called by emit, on
// Raft's FSM goroutine for snapshots and restores.
func (s *Store[S, A]) countEvent(k EventKind) {
	switch k {
	case EventSnapshot:
		s.met.snapshots.Add(1)
	case EventRestored:
		s.met.restores.Add(1)
	}
}

// registerMetrics adds the group's series to the node's metrics and
// starts counting leader changes; Start calls it with s.mu held, once
// Raft runs. A node at its source limit runs the group without metrics.
func (s *Store[S, A]) registerMetrics() {
	s.met.leaderObs = raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if _, ok := o.Data.(raft.LeaderObservation); ok {
			s.met.leaderChanges.Add(1)
		}
		return false // counted here; nothing is sent
	})
	s.raft.RegisterObserver(s.met.leaderObs)
	col := s.ring.n.Metrics()
	if col == nil {
		return
	}
	unreg, err := col.Register(s.collect)
	if err != nil {
		s.log.Warn("conflux: group reports no metrics", "err", err)
		return
	}
	s.met.unregister = unreg
}

// unregisterMetrics undoes registerMetrics; Stop calls it with s.mu held.
func (s *Store[S, A]) unregisterMetrics() {
	if s.met.unregister != nil {
		s.met.unregister()
		s.met.unregister = nil
	}
	if s.met.leaderObs != nil && s.raft != nil {
		s.raft.DeregisterObserver(s.met.leaderObs)
	}
}

// The per-state values of notp_conflux_state.
var raftStates = [...]raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

// collect is the group's metrics.Source: Raft's indexes and configuration,
// and the store's counters, labelled group=<Name>.
func (s *Store[S, A]) collect(emit func(metrics.Sample)) {
	r := s.raft
	group := []metrics.Label{{Name: "group", Value: s.cfg.Name}}
	with := func(name, value string) []metrics.Label {
		return []metrics.Label{group[0], {Name: name, Value: value}}
	}
	gauge := func(name, help string, v float64) {
		emit(metrics.Sample{Name: "notp_conflux_" + name, Help: help, Kind: metrics.Gauge, Labels: group, Value: v})
	}
	counter := func(name, help string, labels []metrics.Label, v uint64) {
		emit(metrics.Sample{Name: "notp_conflux_" + name, Help: help, Kind: metrics.Counter, Labels: labels, Value: float64(v)})
	}
	state := r.State()
	for _, st := range raftStates {
		v := 0.0
		if st == state {
			v = 1
		}
		emit(metrics.Sample{Name: "notp_conflux_state", Help: "1 for this node's Raft state in the group, 0 for the others.",
			Kind: metrics.Gauge, Labels: with("state", lowerState(st)), Value: v})
	}
	gauge("term", "This node's current Raft term.", float64(r.CurrentTerm()))
	gauge("commit_index", "The log index this node knows committed.", float64(r.CommitIndex()))
	gauge("applied_index", "The log index Raft applied on this node.", float64(r.AppliedIndex()))
	gauge("last_log_index", "The last log index stored on this node.", float64(r.LastIndex()))
	snap, _ := strconv.ParseUint(r.Stats()["last_snapshot_index"], 10, 64)
	gauge("last_snapshot_index", "The log index of this node's last snapshot.", float64(snap))
	var voters, nonvoters int
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			if sv.Suffrage == raft.Voter {
				voters++
			} else {
				nonvoters++
			}
		}
	}
	gauge("voters", "Voters in the group's latest configuration.", float64(voters))
	gauge("nonvoters", "Non-voters in the group's latest configuration.", float64(nonvoters))
	gauge("pending", "Performs and Reads waiting on this node now.", float64(s.pending.Load()))
	counter("leader_changes_total", "Leader changes this node observed (including to no leader).", group, s.met.leaderChanges.Load())
	for i, o := range performOutcomes {
		counter("performs_total", "Performs started on this node, by outcome.", with("outcome", o), s.met.performs[i].Load())
	}
	for c, name := range [...]string{Stale: "stale", Linearizable: "linearizable"} {
		counter("reads_total", "Reads on this node that returned a state, by consistency.", with("consistency", name), s.met.reads[c][0].Load())
		counter("reads_failed_total", "Reads on this node that failed, by consistency.", with("consistency", name), s.met.reads[c][1].Load())
	}
	counter("snapshots_total", "Snapshots this node took of the group's state.", group, s.met.snapshots.Load())
	counter("restores_total", "Snapshots this node restored (from its disk or from the leader).", group, s.met.restores.Load())
	counter("overloaded_total", "Performs and Reads refused at Config.MaxPending.", group, s.overloaded.Load())
	counter("events_dropped_total", "Events lost on full subscriber channels (SubscribeEvents, Events).", group, s.dropped.Load())
	h := s.met.latency.Snapshot()
	emit(metrics.Sample{Name: "notp_conflux_perform_duration_seconds", Help: "Time each Perform on this node took, whatever its outcome.",
		Kind: metrics.Histogram, Labels: group, Histogram: &h})
}

// lowerState names a Raft state as a label value.
func lowerState(st raft.RaftState) string {
	switch st {
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	case raft.Leader:
		return "leader"
	}
	return "shutdown"
}
