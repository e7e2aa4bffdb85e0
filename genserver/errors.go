package genserver

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp"
)

// Sentinel errors returned by the lifecycle methods and the typed helpers.
var (
	// ErrAlreadyStarted: Start was called on a server that is running. It
	// wraps notp.ErrAlreadyStarted.
	ErrAlreadyStarted = fmt.Errorf("genserver: %w", notp.ErrAlreadyStarted)
	// ErrNotStarted: Pause or Resume was called on a server that is not
	// running. It wraps notp.ErrNotStarted.
	ErrNotStarted = fmt.Errorf("genserver: %w", notp.ErrNotStarted)
	// ErrNilKernel: New was given a nil kernel. It wraps notp.ErrNilKernel.
	ErrNilKernel = fmt.Errorf("genserver: %w", notp.ErrNilKernel)
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("genserver: invalid config")
	// ErrDecode: a typed helper could not msgpack-decode a request or reply.
	ErrDecode = errors.New("genserver: decode")
	// ErrEncode: a typed helper could not msgpack-encode a request or reply.
	ErrEncode = errors.New("genserver: encode")
)

// NoReply is returned by a [HandlerFunc] that will answer later: the server
// sends nothing, and the handler (or a goroutine it started) answers with
// [Server.Reply] or [Server.ReplyError] using the request's From. It is a
// control value, like filepath.SkipDir, not a failure.
var NoReply = errors.New("genserver: no reply yet")

// Codes of the [kernel.RemoteError]s a genserver answers callers with. A
// panicking handler is answered with kernel.CodeHandlerPanic.
const (
	// CodeUnknownEvent: no handler is registered for the request's event.
	CodeUnknownEvent = "UNKNOWN_EVENT"
	// CodeBadRequest: the payload is not a well-formed {event, data} map,
	// Config.Decode rejected it, or a typed handler could not decode it.
	CodeBadRequest = "BAD_REQUEST"
	// CodeOverloaded: the mailbox was full when the request arrived.
	CodeOverloaded = "OVERLOADED"
	// CodePaused: the server is paused and dropped the request.
	CodePaused = "PAUSED"
	// CodeStopped: the server stopped before handling the request.
	CodeStopped = "STOPPED"
)
