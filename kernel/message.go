package kernel

import (
	"errors"
	"fmt"
	"net"

	"github.com/notp-go/notp"
)

// Sentinel errors. Callers branch on them with errors.Is; the kernel wraps
// them with the peer or actor they concern.
var (
	// ErrClosed: the kernel was closed and takes no new work. It wraps
	// notp.ErrClosed.
	ErrClosed = fmt.Errorf("kernel: %w", notp.ErrClosed)
	// ErrNotStarted: the operation needs the kernel started (see
	// [Kernel.Start]) and Start has not been called yet. It wraps
	// notp.ErrNotStarted.
	ErrNotStarted = fmt.Errorf("kernel: %w", notp.ErrNotStarted)
	// ErrAlreadyStarted: Start was called twice. It wraps
	// notp.ErrAlreadyStarted.
	ErrAlreadyStarted = fmt.Errorf("kernel: %w", notp.ErrAlreadyStarted)
	// ErrUnknownNode: the target node is neither this node nor a connected peer.
	ErrUnknownNode = errors.New("kernel: unknown node")
	// ErrInactiveConnection: the connection to the peer was stopped.
	ErrInactiveConnection = errors.New("kernel: inactive connection")
	// ErrNameTaken: Register was given a name already registered.
	ErrNameTaken = errors.New("kernel: name already registered")
	// ErrReservedName: the name is reserved for the kernel's own use.
	ErrReservedName = errors.New("kernel: reserved name")
	// ErrNoReplyTag: Reply was given a From without a reply tag (a cast).
	ErrNoReplyTag = errors.New("kernel: message has no reply tag")
	// ErrFrameTooLarge: a frame (or unchunked payload) exceeds MaxFrameSize.
	ErrFrameTooLarge = errors.New("kernel: frame too large")
	// ErrBufferLimit: a collected stream exceeded its size limit.
	ErrBufferLimit = errors.New("kernel: buffer limit exceeded")
	// ErrBadSignature: a frame failed authentication.
	ErrBadSignature = errors.New("kernel: bad frame signature")
	// ErrInvalidReply: a reply arrived from a node other than the one called.
	ErrInvalidReply = errors.New("kernel: reply from unexpected node")
	// ErrInsecure: no cookie was configured and Config.Insecure was not set.
	ErrInsecure = errors.New("kernel: empty cookie requires Config.Insecure")
	// ErrWeakCookie: the cookie is shorter than MinCookieLen bytes and
	// Config.AllowWeakCookie was not set.
	ErrWeakCookie = errors.New("kernel: weak cookie")
	// ErrProtocolVersion: a peer's hello offers no protocol version
	// this node speaks (their version ranges do not overlap).
	ErrProtocolVersion = errors.New("kernel: no common protocol version")
	// ErrStreamCanceled: the caller stopped reading a streamed reply (closed
	// its CallStream reader or gave up on the call), so ReplyStream stopped.
	ErrStreamCanceled = errors.New("kernel: stream canceled by the receiver")
	// ErrConnectionLost: the connection a call, ping or call stream was
	// written on closed before the reply came. The request may or may not
	// have been handled. Calls still queued for a reconnecting link do not
	// get it: they go out on the next connection.
	ErrConnectionLost = errors.New("kernel: connection lost")
	// ErrNodeDown: a call, ping or call stream was refused at once because
	// the link's last connection attempt failed (the error then also wraps
	// a *LinkError with that attempt's error) or the membership layer
	// reported the node down (see [Kernel.SetNodeDown]).
	ErrNodeDown = errors.New("kernel: node down")
	// ErrQueueFull: a call's request was dropped from a full reconnect
	// queue (Config.QueueLen, oldest dropped) before it could be sent.
	ErrQueueFull = errors.New("kernel: reconnect queue full")
)

// Error codes carried by [RemoteError.Code] for conditions raised by the
// kernel itself. Handlers may use codes of their own.
const (
	CodeUnknownName  = "UNKNOWN_NAME"
	CodeHandlerPanic = "HANDLER_PANIC"
	CodeTimeout      = "TIMEOUT"
	CodeInvalidReply = "INVALID_REPLY"
	CodeBufferLimit  = "BUFFER_LIMIT"
)

// RemoteError is an error raised on the remote node (by a handler or by the
// remote kernel) and carried back to the caller. errors.Is matches another
// *RemoteError with the same non-empty Code, so callers can write
// errors.Is(err, &kernel.RemoteError{Code: "NOT_FOUND"}).
type RemoteError struct {
	Code    string            `msgpack:"code" json:"code,omitempty"`
	Message string            `msgpack:"message" json:"message"`
	Fields  map[string]string `msgpack:"fields,omitempty" json:"fields,omitempty"`
	// Node is the node that raised the error; it is filled in by the
	// receiving kernel and not sent on the wire.
	Node notp.Node `msgpack:"-" json:"-"`
}

func (e *RemoteError) Error() string {
	var s string
	if e.Node.ID != "" {
		s = "remote " + e.Node.ID + ": "
	} else {
		s = "remote: "
	}
	if e.Code != "" {
		s += e.Code + ": "
	}
	return s + e.Message
}

// Is reports whether target is a *RemoteError with the same non-empty Code.
func (e *RemoteError) Is(target error) bool {
	t, ok := target.(*RemoteError)
	return ok && t.Code != "" && t.Code == e.Code
}

// Errorf builds a *RemoteError with a code, for handlers to reply with.
func Errorf(code, format string, args ...any) *RemoteError {
	return &RemoteError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// From says who sent a message and how to answer it. It is a value that a
// handler may keep and pass to [Kernel.Reply] later (deferred replies).
type From struct {
	// Node is the sender, as authenticated by the connection handshake.
	Node notp.Node
	// Tag is the reply tag of a call; empty for a cast.
	Tag string

	// route identifies the connection the request arrived on, so the reply
	// travels back over it; nil for local messages. Set by the kernel.
	route replyRoute
}

// IsCall reports whether the sender waits for a reply.
func (f From) IsCall() bool { return f.Tag != "" }

// RemoteAddr returns the network address of the connection the message
// arrived on, or nil for a message sent by this node to itself. Unlike
// Node, which any holder of the cookie can claim, it is where the bytes
// came from (as far as the network says): worth logging beside Node.
func (f From) RemoteAddr() net.Addr {
	if s, ok := f.route.(*session); ok {
		return s.c.RemoteAddr()
	}
	return nil
}

// replyRoute is how a reply reaches the caller: the inbound connection the
// request arrived on, or the local kernel. Implemented by the kernel.
type replyRoute interface {
	sendReply(tag string, data []byte, rerr *RemoteError) error
	// sendReplyChunk sends one chunk of a streamed reply (ReplyStream).
	sendReplyChunk(tag, stream string, done bool, data []byte, rerr *RemoteError) error
}

// Message is one delivery to a registered handler.
type Message struct {
	// Name is the registered name the message was addressed to.
	Name string
	// From identifies the sender and carries the reply tag.
	From From
	// Data is the payload. Handlers own it: the kernel never reuses it.
	Data []byte
}

// Handler receives the messages addressed to one registered name.
//
// The kernel calls Handle from the goroutine that reads the sender's
// connection (or, for local messages, from the caller's goroutine), one
// message at a time per connection, in arrival order. Handle must not block
// for long: a slow Handle stalls every message from that peer. Actors hand
// the message to their own goroutine (see package genserver). A panic in
// Handle is recovered and counted in Stats.HandlerPanics; the caller, if
// any, gets a *RemoteError with code CodeHandlerPanic. For a message from
// another node the connection it arrived on is also closed (its state may
// be inconsistent): calls still awaiting replies on it fail with
// ErrConnectionLost and the peer's link reconnects.
type Handler interface {
	Handle(m Message)
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(m Message)

// Handle calls f(m).
func (f HandlerFunc) Handle(m Message) { f(m) }

// Result is one node's answer to a [Kernel.MultiCall].
type Result struct {
	Node notp.Node
	Data []byte
	Err  error
}
