package dlm

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated"
)

// lifecycle are the sentinels of Start, Stop and a stopped or unstarted
// DLM, made as every replicated service's are.
var lifecycle = replicated.NewErrors("dlm")

// Sentinel errors. Test with errors.Is.
var (
	// ErrAlreadyStarted: Start was called twice. Wraps notp.ErrAlreadyStarted.
	ErrAlreadyStarted = lifecycle.AlreadyStarted
	// ErrNotStarted: the DLM was used before Start. Wraps notp.ErrNotStarted.
	ErrNotStarted = lifecycle.NotStarted
	// ErrClosed: the DLM was stopped. Wraps notp.ErrClosed.
	ErrClosed = lifecycle.Closed
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
	CodeBadRequest = genserver.CodeBadRequest
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
	head := fmt.Sprintf("dlm: Failed to acquire %s, retry count exhausted.", e.Kind)
	return replicated.ExhaustedMessage(head, fmt.Sprintf("lock %q", e.ID), e.Attempts, e.Last)
}

// Unwrap returns ErrRetriesExhausted and the last attempt's error.
func (e *AcquireError) Unwrap() []error { return []error{ErrRetriesExhausted, e.Last} }
