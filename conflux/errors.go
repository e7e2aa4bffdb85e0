package conflux

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp"
)

var (
	// ErrClosed: the store is stopped (or was never started) and takes no
	// new work. It wraps notp.ErrClosed.
	ErrClosed = fmt.Errorf("conflux: %w", notp.ErrClosed)
	// ErrAlreadyStarted: Start was called twice. It wraps
	// notp.ErrAlreadyStarted.
	ErrAlreadyStarted = fmt.Errorf("conflux: %w", notp.ErrAlreadyStarted)
	// ErrNoLeader: the group has no known leader (an election is running,
	// or this node has not been added to a group yet). Nothing was
	// appended; retrying later is safe.
	ErrNoLeader = errors.New("conflux: no leader")
	// ErrUnknownOutcome: the action may or may not have been committed (a
	// timeout, a lost connection or lost leadership after the entry may
	// have been appended). Retry only with a request ID (WithRequestID),
	// which makes the retry apply at most once.
	ErrUnknownOutcome = errors.New("conflux: unknown outcome")
	// ErrUnknownMethod: Perform named a method the leader does not have.
	// Nothing was appended.
	ErrUnknownMethod = errors.New("conflux: unknown method")
	// ErrNoAction is what a Method returns to dispatch nothing; Perform
	// then returns it (wrapped) with the zero action. Nothing was appended.
	ErrNoAction = errors.New("conflux: no action")
	// ErrStaleRequest: a request ID older than the newest one the group
	// has recorded for its client. Nothing was appended.
	ErrStaleRequest = errors.New("conflux: request ID older than the client's latest")
	// ErrInvalidConfig: New was given a nil node or a Config field that is
	// missing or out of range, or Start found the group's name already
	// running on this node.
	ErrInvalidConfig = errors.New("conflux: invalid config")
)

// NotLeaderError says this node is not the leader (for calls that do not
// forward, such as a leadership transfer from a follower). Leader is the
// leader this node knows of, zero when none. Nothing was appended.
type NotLeaderError struct {
	Leader notp.Node
}

func (e *NotLeaderError) Error() string {
	if e.Leader.ID == "" {
		return "conflux: not the leader (no leader known)"
	}
	return "conflux: not the leader; leader is " + e.Leader.ID
}

// MethodError is a Method's error as it reaches a caller on another node:
// its message, and the sentinel of Config.Errors it matched (nil when
// none), which Unwrap returns so errors.Is works across nodes. On the
// leader itself a Method's error is returned unchanged.
type MethodError struct {
	Method  string
	Message string
	Err     error
}

func (e *MethodError) Error() string { return e.Message }

// Unwrap returns the matched sentinel of Config.Errors, or nil.
func (e *MethodError) Unwrap() error { return e.Err }

// ErrOverloaded: too many Performs and Reads wait on this node
// (Config.MaxPending). Nothing was appended; retry with backoff.
var ErrOverloaded = errors.New("conflux: too many pending requests")
