package conflux

import "fmt"

// EventKind says what an [Event] reports.
type EventKind uint8

// The event kinds. Values are append-only.
const (
	// EventLeader: this node became the group's leader.
	EventLeader EventKind = iota + 1
	// EventFollower: this node became a follower.
	EventFollower
	// EventCandidate: this node started an election.
	EventCandidate
	// EventJoined: Node joined the group's configuration (as a voter or
	// a non-voter; also when promoted).
	EventJoined
	// EventLeft: Node was removed from the group's configuration.
	EventLeft
	// EventSnapshot: this node took a snapshot at Index.
	EventSnapshot
	// EventRestored: this node's state was replaced by a snapshot at
	// Index (at start, or sent by the leader to a far-behind node).
	EventRestored
	// EventShutdown: this node's Raft stopped (Stop, or it was removed
	// from the group).
	EventShutdown
)

var eventNames = map[EventKind]string{
	EventLeader: "leader", EventFollower: "follower", EventCandidate: "candidate",
	EventJoined: "joined", EventLeft: "left", EventSnapshot: "snapshot",
	EventRestored: "restored", EventShutdown: "shutdown",
}

// String returns the kind's name, such as "leader".
func (k EventKind) String() string {
	if s, ok := eventNames[k]; ok {
		return s
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one notification from [Store.SubscribeEvents] and [Store.Events].
type Event struct {
	Kind  EventKind
	Node  string // the node joined or left (EventJoined, EventLeft)
	Voter bool   // EventJoined: whether Node votes
	Index uint64 // EventSnapshot, EventRestored: the log index
	Term  uint64 // role events: the Raft term
}

// emit publishes e to the store's subscribers without blocking (see
// SubscribeEvents): it runs on Raft's observer and apply goroutines and in
// Stop, none of which may wait for a reader. Each subscriber whose
// channel is full loses e, and dropped counts it.
func (s *Store[S, A]) emit(e Event) {
	s.countEvent(e.Kind)
	if n := s.bus.Publish(e); n > 0 {
		s.dropped.Add(uint64(n))
	}
}
