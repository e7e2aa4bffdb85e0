package genserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/notp-go/notp/kernel"
)

// Defaults applied by [New] to zero Config fields.
const (
	// DefaultMailboxSize is the mailbox capacity when Config.MailboxSize is 0.
	DefaultMailboxSize = 1024
	// DefaultMailboxWait was the default of Config.MailboxWait.
	//
	// Deprecated: Config.MailboxWait is ignored; a full mailbox rejects at once.
	DefaultMailboxWait = 100 * time.Millisecond
)

// Config tunes a [Server]. The zero value is usable: a random name, a
// 1024-message mailbox, the kernel's call timeout and a discarded log.
type Config struct {
	// Name is the name the server registers on its kernel. Empty means a
	// random id (like notp's shortid), replaced by a fresh one after each
	// Stop. A name must be unique per kernel; Start fails with an error
	// wrapping kernel.ErrNameTaken (or kernel.ErrReservedName) otherwise.
	Name string
	// MailboxSize is the number of received messages that may wait for the
	// actor goroutine. 0 = DefaultMailboxSize (1024); negative is invalid.
	// A larger mailbox absorbs longer bursts at the price of memory and of
	// latency for the messages at its tail.
	MailboxSize int
	// MailboxWait used to bound how long a message waited for room in a
	// full mailbox, blocking the goroutine delivering it. For a remote
	// sender that goroutine is its connection's reader, so one slow actor
	// stalled every other actor's traffic on the link; a local sender may
	// be such a reader too (a kernel handler casting to a local server).
	// So a full mailbox now rejects at once: a call gets a
	// *kernel.RemoteError with CodeOverloaded, a cast is dropped and
	// counted in Stats.Overloaded.
	//
	// Deprecated: ignored. Size the mailbox (MailboxSize) for bursts, and
	// have callers retry CodeOverloaded with backoff.
	MailboxWait time.Duration
	// CallTimeout is the deadline the client methods (Call, MultiCall) apply
	// when their ctx has none. 0 = leave it to the kernel, whose
	// Config.CallTimeout defaults to 30 s; negative is invalid.
	CallTimeout time.Duration
	// Decode, when set, runs on the actor goroutine before a request is
	// dispatched (notp's decodeJob/decodeSingleton). It may validate the
	// data and return a decoded value, which the handler finds in
	// Request.Value. An error means the handler is not called; a caller
	// gets a *kernel.RemoteError with CodeBadRequest (or the error itself if
	// it is a *kernel.RemoteError) and a cast is dropped and counted in
	// Stats.BadRequests. It is called only for events that have a handler.
	Decode func(event string, data []byte) (any, error)
	// Logger receives the server's logs (handler panics at Error, drops at
	// Debug). nil discards.
	Logger *slog.Logger
}

// Request is one message handed to a [HandlerFunc].
type Request struct {
	// Event is the user event name the sender chose.
	Event string
	// Data is the request's payload; the handler owns it.
	Data []byte
	// From identifies the sender; From.IsCall reports whether it waits for
	// a reply. Keep it to answer later with Server.Reply.
	From kernel.From
	// Value is what Config.Decode returned, or nil without a decoder.
	Value any

	// release gives back the kernel's hold on Data (kernel.Message.Hold)
	// once the request leaves the mailbox; nil for requests made here.
	release func()
}

// dequeued releases the request's hold on its connection's byte budget.
func (r *Request) dequeued() {
	if r.release != nil {
		r.release()
	}
}

// HandlerFunc handles one event on the server's actor goroutine. For a call,
// the returned bytes are the reply and a non-nil error becomes an error
// reply (a *kernel.RemoteError travels as is, any other error as its
// message). Returning [NoReply] sends nothing: the handler answers later
// with [Server.Reply]. For a cast the results are ignored (errors are logged
// at Debug). ctx is cancelled when the server stops.
type HandlerFunc func(ctx context.Context, r Request) ([]byte, error)

// Server is a named actor on a [kernel.Kernel]: messages addressed to its
// name are queued in a bounded mailbox and handled one at a time by a single
// goroutine that owns the server's state. A Server that is never started is
// still a client: its Call, Cast, MultiCall, Abcast and Reply methods only
// need the kernel. All methods are safe for concurrent use.
type Server struct {
	k   *kernel.Kernel
	cfg Config
	log *slog.Logger

	hmu      sync.Mutex                              // serialises Handle
	handlers atomic.Pointer[map[string]handlerEntry] // copy on write
	unknown  atomic.Pointer[HandlerFunc]             // HandleUnknown's handler, or nil

	life sync.Mutex          // serialises Start and Stop
	cur  atomic.Pointer[run] // the running generation, nil when stopped
	name atomic.Pointer[string]

	subs  subscribers
	stats counters
}

// New returns a stopped server on k. It validates and copies cfg and does
// not touch the kernel; register handlers with [Server.Handle], then call
// [Server.Start].
func New(k *kernel.Kernel, cfg Config) (*Server, error) {
	if k == nil {
		return nil, ErrNilKernel
	}
	switch {
	case cfg.MailboxSize < 0:
		return nil, fmt.Errorf("%w: MailboxSize %d < 0", ErrInvalidConfig, cfg.MailboxSize)
	case cfg.CallTimeout < 0:
		return nil, fmt.Errorf("%w: CallTimeout %v < 0", ErrInvalidConfig, cfg.CallTimeout)
	}
	if cfg.MailboxSize == 0 {
		cfg.MailboxSize = DefaultMailboxSize
	}
	s := &Server{k: k, cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.subs.dropped = func() { s.stats.eventsDropped.Add(1) }
	name := cfg.Name
	if name == "" {
		name = randomID()
	}
	s.name.Store(&name)
	s.handlers.Store(&map[string]handlerEntry{})
	return s, nil
}

// randomID returns a fresh random server id (64 random bits in hex).
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// Kernel returns the kernel the server runs on.
func (s *Server) Kernel() *kernel.Kernel { return s.k }

// Name returns the name the server is (or will be) registered under.
func (s *Server) Name() string { return *s.name.Load() }

// Handle registers fn for event, replacing any previous handler. It may be
// called at any time, also while the server runs; a nil fn removes the
// handler. Event names are user names only: "pause" or "stop" are ordinary
// events and never touch the lifecycle.
func (s *Server) Handle(event string, fn HandlerFunc) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	old := *s.handlers.Load()
	m := make(map[string]handlerEntry, len(old)+1)
	for e, h := range old {
		m[e] = h
	}
	if fn == nil {
		delete(m, event)
	} else {
		m[event] = handlerEntry{event: event, fn: fn}
	}
	s.handlers.Store(&m)
}

// HandleUnknown registers fn for every event that has no handler of its
// own (Erlang's catch-all clause), replacing any previous one; r.Event
// tells which event came. A nil fn removes it: such events then get an
// error reply with CodeUnknownEvent (calls) or are dropped and counted
// (casts). Like Handle, it may be called at any time.
func (s *Server) HandleUnknown(fn HandlerFunc) {
	if fn == nil {
		s.unknown.Store(nil)
		return
	}
	s.unknown.Store(&fn)
}

// handlerEntry keeps the event name beside its handler so that a decoded
// event can reuse the map's string instead of allocating one per message.
type handlerEntry struct {
	event string
	fn    HandlerFunc
}

func (s *Server) handler(event string) HandlerFunc {
	if fn := (*s.handlers.Load())[event].fn; fn != nil {
		return fn
	}
	if fn := s.unknown.Load(); fn != nil {
		return *fn
	}
	return nil
}

// internEvent returns ev as a string, without allocating when a handler
// is registered for it.
func (s *Server) internEvent(ev []byte) string {
	if e, ok := (*s.handlers.Load())[string(ev)]; ok {
		return e.event
	}
	return string(ev)
}

// Start registers the server's name on the kernel and starts its actor
// goroutine. It fails with ErrAlreadyStarted if the server runs, and with an error
// wrapping kernel.ErrNameTaken or kernel.ErrReservedName if the kernel
// refuses the name; the name is left unchanged on failure. ctx is only
// checked: the server runs until Stop.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.Lock()
	defer s.life.Unlock()
	if s.cur.Load() != nil {
		return fmt.Errorf("%w: %q", ErrAlreadyStarted, s.Name())
	}
	r := newRun(s, s.Name())
	if err := s.k.Register(r.name, r); err != nil {
		r.cancel()
		return fmt.Errorf("genserver: start %q: %w", r.name, err)
	}
	s.cur.Store(r)
	go r.loop()
	s.subs.emit(Event{Kind: EventStart, Name: r.name})
	return nil
}

// Pause stops the server from receiving: until Resume, arriving messages are
// dropped and counted in Stats.Paused, and a caller gets a
// *kernel.RemoteError with CodePaused instead of waiting for its timeout.
// Messages already in the mailbox are still handled. The name stays
// registered, so Resume cannot fail. Pausing a paused server does nothing;
// a stopped server gives ErrNotStarted.
func (s *Server) Pause() error { return s.setPaused(true) }

// Resume undoes Pause. Resuming a running server does nothing; a stopped
// server gives ErrNotStarted.
func (s *Server) Resume() error { return s.setPaused(false) }

// setPaused sets the running server's paused flag, emitting EventPause or
// EventResume when that changed it.
func (s *Server) setPaused(paused bool) error {
	op, kind := "resume", EventResume
	if paused {
		op, kind = "pause", EventPause
	}
	r := s.cur.Load()
	if r == nil {
		return fmt.Errorf("%w: %s %q", ErrNotStarted, op, s.Name())
	}
	if r.paused.CompareAndSwap(!paused, paused) {
		s.subs.emit(Event{Kind: kind, Name: r.name})
	}
	return nil
}

// Paused reports whether the server is running and paused.
func (s *Server) Paused() bool {
	r := s.cur.Load()
	return r != nil && r.paused.Load()
}

// Running reports whether the server has been started and not stopped.
func (s *Server) Running() bool { return s.cur.Load() != nil }

// Idle reports whether the server has no queued or in-flight message.
// A stopped server is idle. Deferred replies are not tracked.
func (s *Server) Idle() bool {
	r := s.cur.Load()
	return r == nil || r.pending.Load() == 0
}

// Stop unregisters the name, refuses new messages (a caller whose message
// arrives now gets CodeStopped) and lets the actor handle what is already
// queued. If ctx ends first, the handlers' ctx is cancelled and the
// messages still queued are answered with CodeStopped instead of handled,
// and Stop returns ctx.Err(). Either way Stop returns only after the actor
// goroutine has exited, so a handler that ignores its ctx delays it.
//
// Stop is idempotent and a stopped server can be started again; an unnamed
// server then gets a new random id. Stop must not be called from a handler
// of the same server (it would wait for itself); call it from a new
// goroutine there.
func (s *Server) Stop(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	r := s.cur.Load()
	if r == nil {
		return nil
	}
	err := r.stop(ctx)
	s.cur.Store(nil)
	if s.cfg.Name == "" {
		id := randomID()
		s.name.Store(&id)
	}
	s.subs.emit(Event{Kind: EventStop, Name: r.name})
	return err
}

// Close stops the server without draining its mailbox: Stop with an
// already cancelled context, so the handler in progress has its ctx
// cancelled and the queued messages are answered with CodeStopped. It
// returns Stop's error other than that cancellation, which is nil: Stop
// fails only with its ctx's error. It is idempotent.
func (s *Server) Close() error { return lifecycle.StopNow(s.Stop) }

// Subscribe returns a channel of lifecycle events with room for buf events
// (≤ 0: 64, the module's default; at most 65536) and a function that
// unsubscribes and closes the channel. The server never blocks on a
// subscriber: an event that finds the channel full is lost and counted in
// Stats.EventsDropped.
func (s *Server) Subscribe(buf int) (<-chan Event, func()) {
	return s.subs.add(buf)
}
