package genserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/notp-go/notp/kernel"
)

// run is one generation of a started server: Start creates it and registers
// it on the kernel as the name's Handler, Stop retires it. A message that
// reaches a retired run (a kernel delivery racing with Stop) is answered
// with CodeStopped, so generations never mix.
type run struct {
	s       *Server
	name    string
	mailbox chan Request
	ctx     context.Context // handlers' ctx, cancelled by stop
	cancel  context.CancelFunc

	gate   sync.RWMutex  // deliveries hold it shared while enqueueing
	closed bool          // guarded by gate: no more enqueues
	quit   chan struct{} // closed after closed is set: drain and exit
	done   chan struct{} // closed when the actor goroutine exits

	forced  atomic.Bool  // stop's ctx ended: reject instead of handle
	paused  atomic.Bool  // Pause: drop deliveries
	pending atomic.Int64 // queued + in-flight messages
}

var _ kernel.Handler = (*run)(nil)

func newRun(s *Server, name string) *run {
	ctx, cancel := context.WithCancel(context.Background())
	return &run{
		s:       s,
		name:    name,
		mailbox: make(chan Request, s.cfg.MailboxSize),
		ctx:     ctx,
		cancel:  cancel,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Handle is called by the kernel, from the sender's connection reader (or
// the local sender's path). It only decodes and enqueues, and never waits:
// a full mailbox rejects the message (see enqueue).
func (r *run) Handle(m kernel.Message) {
	st := &r.s.stats
	st.received.Add(1)
	event, data, err := decodeRequest(m.Data)
	if err != nil {
		st.malformed.Add(1)
		r.reject(m.From, CodeBadRequest, err.Error())
		return
	}
	if r.paused.Load() {
		st.paused.Add(1)
		r.reject(m.From, CodePaused, "server "+r.name+" is paused")
		return
	}
	r.enqueue(Request{Event: r.s.internEvent(event), Data: data, From: m.From, release: m.Hold()})
}

// enqueue puts req in the mailbox, or rejects it: CodeStopped once the run
// is retired, CodeOverloaded when the mailbox is full. It never waits for
// room: the goroutine delivering req is, for a remote sender, the reader of
// the connection it came over, and waiting there would stall every other
// message on that connection (calls to other actors, replies) behind one
// slow actor. Rejecting at once tells the caller at once.
func (r *run) enqueue(req Request) {
	queued := false
	defer func() {
		if !queued {
			req.dequeued()
		}
	}()
	st := &r.s.stats
	r.gate.RLock()
	defer r.gate.RUnlock()
	if r.closed {
		st.stopped.Add(1)
		r.reject(req.From, CodeStopped, "server "+r.name+" stopped")
		return
	}
	if r.offer(req) {
		queued = true
		return
	}
	st.overloaded.Add(1)
	r.s.log.Debug("genserver mailbox full", "actor", r.name, "event", req.Event)
	r.reject(req.From, CodeOverloaded, "server "+r.name+" mailbox full")
}

// offer puts req in the mailbox if there is room, without waiting, and
// counts it as pending; false if the mailbox is full.
func (r *run) offer(req Request) bool {
	r.pending.Add(1)
	select {
	case r.mailbox <- req:
		return true
	default:
		r.pending.Add(-1)
		return false
	}
}

// reject answers a caller with an error; casts get nothing.
func (r *run) reject(from kernel.From, code, msg string) {
	if !from.IsCall() {
		return
	}
	if err := r.s.k.ReplyError(from, &kernel.RemoteError{Code: code, Message: msg}); err != nil {
		r.s.log.Debug("genserver reply failed", "actor", r.name, "peer", from.Node.ID, "err", err)
	}
}

// loop is the actor goroutine: it owns the handlers' execution.
func (r *run) loop() {
	defer close(r.done)
	for {
		select {
		case req := <-r.mailbox:
			r.process(req)
		case <-r.quit:
			for {
				select {
				case req := <-r.mailbox:
					r.process(req)
				default:
					return
				}
			}
		}
	}
}

func (r *run) process(req Request) {
	req.dequeued()
	if r.forced.Load() {
		r.s.stats.stopped.Add(1)
		r.reject(req.From, CodeStopped, "server "+r.name+" stopped")
	} else {
		r.dispatch(req)
	}
	if r.pending.Add(-1) == 0 {
		r.s.subs.emit(Event{Kind: EventIdle, Name: r.name})
	}
}

func (r *run) dispatch(req Request) {
	s := r.s
	h := s.handler(req.Event)
	if h == nil {
		s.stats.unknown.Add(1)
		r.reject(req.From, CodeUnknownEvent, fmt.Sprintf("server %s has no handler for event %q", r.name, req.Event))
		return
	}
	reply, err := r.invoke(h, &req)
	if errors.Is(err, NoReply) {
		return
	}
	if !req.From.IsCall() {
		if err != nil {
			s.log.Debug("genserver cast handler failed", "actor", r.name, "event", req.Event, "err", err)
		}
		return
	}
	if err != nil {
		err = s.k.ReplyError(req.From, err)
	} else {
		err = s.k.Reply(req.From, reply)
	}
	if err != nil {
		s.log.Debug("genserver reply failed", "actor", r.name, "peer", req.From.Node.ID, "err", err)
	}
}

// invoke runs Config.Decode and the handler, turning a panic into an error.
func (r *run) invoke(h HandlerFunc, req *Request) (reply []byte, err error) {
	s := r.s
	defer func() {
		if p := recover(); p != nil {
			s.stats.panics.Add(1)
			s.log.Error("genserver handler panic", "actor", r.name, "event", req.Event,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			reply, err = nil, kernel.Errorf(kernel.CodeHandlerPanic, "server %s: handler for %q panicked: %v", r.name, req.Event, p)
		}
	}()
	if dec := s.cfg.Decode; dec != nil {
		v, derr := dec(req.Event, req.Data)
		if derr != nil {
			s.stats.badRequests.Add(1)
			var re *kernel.RemoteError
			if errors.As(derr, &re) {
				return nil, re
			}
			return nil, &kernel.RemoteError{Code: CodeBadRequest, Message: derr.Error()}
		}
		req.Value = v
	}
	s.stats.handled.Add(1)
	return h(r.ctx, *req)
}

// stop retires the run; see Server.Stop.
func (r *run) stop(ctx context.Context) error {
	r.s.k.Unregister(r.name)
	r.gate.Lock()
	r.closed = true
	r.gate.Unlock()
	close(r.quit)
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		err = ctx.Err()
		r.forced.Store(true)
		r.cancel()
		<-r.done
	}
	r.cancel()
	if err != nil {
		r.s.log.Debug("genserver stop forced", "actor", r.name, "err", err)
	} else {
		r.s.log.Debug("genserver stopped", "actor", r.name, slog.Int64("pending", r.pending.Load()))
	}
	return err
}
