package dlm

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrAlreadyStarted: Start was called twice. Wraps notp.ErrAlreadyStarted.
	ErrAlreadyStarted = fmt.Errorf("dlm: %w", notp.ErrAlreadyStarted)
	// ErrNotStarted: the DLM was used before Start. Wraps notp.ErrNotStarted.
	ErrNotStarted = fmt.Errorf("dlm: %w", notp.ErrNotStarted)
	// ErrClosed: the DLM was stopped. Wraps notp.ErrClosed.
	ErrClosed = fmt.Errorf("dlm: %w", notp.ErrClosed)
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("dlm: invalid config")
	// ErrInvalidArgument: an ID, holder or TTL was empty, too long or out
	// of range; nothing was sent.
	ErrInvalidArgument = errors.New("dlm: invalid argument")
	// ErrRetriesExhausted: every attempt to take a lock was refused. The
	// *AcquireError carrying it says which lock and why the last attempt
	// failed.
	ErrRetriesExhausted = errors.New("dlm: retry count exhausted")
	// ErrNoQuorum: an unlock reached fewer than a quorum of replicas; the
	// rest of the lock expires with its TTL.
	ErrNoQuorum = errors.New("dlm: no quorum")
)

// Codes of the kernel.RemoteErrors a replica answers with.
const (
	// CodeBadRequest: the request payload did not decode or failed
	// validation (genserver.CodeBadRequest).
	CodeBadRequest = "BAD_REQUEST"
	// CodeFull: the replica holds MaxLocks locks, or the read lock
	// MaxHolders holders.
	CodeFull = "DLM_FULL"
	// CodeStorage: the replica could not persist the change; nothing
	// changed.
	CodeStorage = "DLM_STORAGE"
)

// AcquireError reports a lock that could not be taken: notp's "Failed to
// acquire rlock, retry count exhausted." (or wlock) with the attempts made
// and the reason of the last one.
type AcquireError struct {
	Kind     string // "rlock" or "wlock"
	ID       string
	Attempts int
	Last     error // why the last attempt failed
}

func (e *AcquireError) Error() string {
	s := fmt.Sprintf("dlm: Failed to acquire %s, retry count exhausted. (lock %q, %d attempts", e.Kind, e.ID, e.Attempts)
	if e.Last != nil {
		s += ", last: " + e.Last.Error()
	}
	return s + ")"
}

// Unwrap returns ErrRetriesExhausted and the last attempt's error.
func (e *AcquireError) Unwrap() []error { return []error{ErrRetriesExhausted, e.Last} }
