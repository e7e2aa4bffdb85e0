// Package genserver runs Erlang-style named actors on a [kernel.Kernel].
//
// A [Server] registers a name on its kernel. Messages addressed to that name
// carry a user event and a payload; the server queues them in a bounded
// mailbox and one goroutine — the actor — hands them one at a time to the
// [HandlerFunc] registered for the event. State touched only by handlers
// therefore needs no locks.
//
//	s, _ := genserver.New(k, genserver.Config{Name: "counter"})
//	n := 0
//	genserver.HandleTyped(s, "add", func(ctx context.Context, d int, _ kernel.From) (int, error) {
//		n += d // only the actor goroutine touches n
//		return n, nil
//	})
//	_ = s.Start(ctx)
//	defer s.Stop(ctx)
//	total, err := genserver.Call[int](ctx, k, genserver.Target{Name: "counter", Node: peer}, "add", 2)
//
// Calls are answered with the handler's bytes, or with a [kernel.RemoteError]
// whose Code says what went wrong: [CodeUnknownEvent] (no handler, and no
// catch-all registered with [Server.HandleUnknown]),
// [CodeBadRequest] (malformed payload or rejected by Config.Decode),
// kernel.CodeHandlerPanic (the handler panicked; the actor keeps running),
// [CodePaused], [CodeOverloaded], [CodeStopped], or any code the handler
// chose. A caller never waits for silence. A handler may return [NoReply] and
// answer later, from any goroutine, with [Server.Reply].
//
// The typed helpers [Call], [Cast] and [HandleTyped] msgpack-encode requests
// and replies so that users never hand-encode; the raw methods take bytes.
//
// # Lifecycle
//
// Start registers the name (failing with kernel.ErrNameTaken without
// changing the name), Pause drops arriving messages (callers get
// CodePaused) while keeping the name, Resume undoes it, Stop unregisters the
// name, drains the mailbox (bounded by its ctx) and waits for the actor. A
// stopped server can be started again; an unnamed one gets a fresh random id
// at each Stop. Lifecycle notifications ([Event]: start, pause, resume, stop,
// idle) come from [Server.Subscribe] and are separate from user events: a
// message from the network can only reach handlers, so a remote "pause" or
// "stop" event is an ordinary event (and an unknown one if no handler has
// that name).
//
// # Wire format
//
// A request is the kernel payload msgpack {"event": str, "data": bin}, encoded
// and decoded by hand without reflection. Streamed (large) requests are
// reassembled by the kernel, bounded by its MaxStreamSize and StreamTimeout,
// before the server sees them; the server always gets whole messages.
//
// # Concurrency
//
// All methods of Server are safe for concurrent use.
//
// Which goroutine: the kernel calls the server's delivery hook on the
// goroutine that reads the sender's connection, and for a local sender on the
// sender's own goroutine (inside its Call or Cast). The hook only decodes the
// {event, data} envelope and enqueues. Config.Decode and every handler run on
// the actor goroutine, one message at a time; handlers of one server never run
// concurrently. Handlers get a ctx that is cancelled when the server stops (at
// the latest when Stop's ctx ends).
//
// Ordering: messages from one sender are handled in the order the kernel
// delivers them, which for a remote node is the order they were sent over its
// connection. Messages from different senders interleave arbitrarily.
//
// What blocks: nothing on the delivery path. The delivery hook never
// waits: a message that finds the mailbox full is rejected at once — a
// call is answered with CodeOverloaded, a cast is dropped and counted in
// [Stats].Overloaded — because the delivering goroutine is, for a remote
// sender, the reader of its connection: waiting there would stall every
// other actor's messages on that link behind one slow actor. (A local
// sender may itself be running on such a reader, inside a kernel handler,
// so local senders do not wait either; Config.MailboxWait is ignored.)
// So Cast never waits for the receiver; Call waits for the reply until ctx
// ends (Config.CallTimeout, else the kernel's CallTimeout, applies when ctx
// has no deadline) or the kernel fails it fast (see Failure semantics).
// Lifecycle events are sent without blocking: a full subscriber channel
// loses the event (counted in Stats.EventsDropped). Stop blocks until the
// actor goroutine exits, so it must not be called from the server's own
// handler, and a handler that calls its own server synchronously
// deadlocks until its call times out.
//
// # Failure semantics
//
// A call through a server ends with the handler's reply or one of these
// errors (match codes with errors.Is(err, &kernel.RemoteError{Code: c})):
//
//   - [CodeOverloaded]: the mailbox was full when the request arrived; the
//     request was not handled. Retry with backoff or size the mailbox.
//   - [CodePaused]: the server is paused; not handled.
//   - [CodeStopped]: the server stopped before handling the request (it
//     arrived after Stop began, or was still queued when Stop's ctx ended).
//   - [CodeUnknownEvent], [CodeBadRequest]: no handler, or a payload that
//     did not decode; not handled.
//   - kernel.CodeHandlerPanic: the handler panicked; the actor keeps running.
//   - kernel.CodeUnknownName: no server of that name runs on the node.
//   - kernel.ErrConnectionLost: the connection the request went out on
//     closed before the reply; it may or may not have been handled.
//   - kernel.ErrNodeDown: the node is known to be down (the last connection
//     attempt failed, or membership reports it dead); not sent.
//   - kernel.ErrQueueFull: the request was dropped from the kernel's
//     reconnect queue; not sent.
//   - ctx's error: no answer within the deadline; it may or may not have
//     been handled.
//
// Memory: a remote request waiting in the mailbox is charged to its
// connection's byte budget (kernel.Message.Hold, kernel.Config.MaxPeerBytes)
// until the actor takes it, so one peer cannot fill mailboxes with more than
// its budget: past it the kernel stops reading that peer.
package genserver
