package dsm

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated"
)

// lifecycle are the sentinels of Start, Stop and a stopped or unstarted
// DSM, made as every replicated service's are.
var lifecycle = replicated.NewErrors("dsm")

// Sentinel errors. Test with errors.Is.
var (
	// ErrAlreadyStarted: Start was called twice. Wraps notp.ErrAlreadyStarted.
	ErrAlreadyStarted = lifecycle.AlreadyStarted
	// ErrNotStarted: the DSM was used before Start. Wraps notp.ErrNotStarted.
	ErrNotStarted = lifecycle.NotStarted
	// ErrClosed: the DSM was stopped. Wraps notp.ErrClosed.
	ErrClosed = lifecycle.Closed
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("dsm: invalid config")
	// ErrInvalidArgument: an ID, holder, size or TTL was out of range;
	// nothing was sent.
	ErrInvalidArgument = errors.New("dsm: invalid argument")
	// ErrRetriesExhausted: Post found the semaphore full on every attempt.
	ErrRetriesExhausted = errors.New("dsm: retry count exhausted")
	// ErrOwnerDown: memberlist reports the semaphore's owner dead; the
	// request was not sent.
	ErrOwnerDown = errors.New("dsm: owner down")
)

// Codes of the kernel.RemoteErrors an owner answers with. Match them with
// errors.Is(err, &kernel.RemoteError{Code: dsm.CodeNotFound}).
const (
	// CodeNotFound: "Semaphore '<id>' does not exist."
	CodeNotFound = "DSM_NOT_FOUND"
	// CodeExists: "Semaphore '<id>' already exist with n equal to <n>."
	CodeExists = "DSM_EXISTS"
	// CodeNotOwner: the node does not own the ID in its view of the ring;
	// the client retries (the views converge).
	CodeNotOwner = "DSM_NOT_OWNER"
	// CodeMoving: the node owns the ID but a ring change was recent and
	// the semaphore may still be on its way; the client retries.
	CodeMoving = "DSM_MOVING"
	// CodeBadRequest: the payload did not decode or failed validation.
	CodeBadRequest = genserver.CodeBadRequest
	// CodeFull: the node holds MaxSemaphores semaphores.
	CodeFull = "DSM_FULL"
	// CodeStorage: the change could not be persisted; nothing changed.
	CodeStorage = "DSM_STORAGE"
)

// PostError reports a Post that found the semaphore full on every
// attempt: notp's "Failed to grab semaphore <id> with holder <holder>."
type PostError struct {
	ID, Holder string
	Attempts   int
	Last       error
}

func (e *PostError) Error() string {
	head := fmt.Sprintf("dsm: Failed to grab semaphore %s with holder %s.", e.ID, e.Holder)
	return replicated.ExhaustedMessage(head, "", e.Attempts, e.Last)
}

// Unwrap returns ErrRetriesExhausted and the last attempt's error.
func (e *PostError) Unwrap() []error { return []error{ErrRetriesExhausted, e.Last} }
