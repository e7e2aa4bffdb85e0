package conflux

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/conflux/internal/logentry"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// MaxClientLen bounds the client name of a request ID.
const MaxClientLen = logentry.MaxClientLen

type requestIDKey struct{}

type requestID struct {
	client string
	seq    uint64
}

// WithRequestID returns a ctx that makes Perform idempotent: client names
// the caller (unique among the group's clients, at most MaxClientLen
// bytes, e.g. random) and seq numbers its requests (increasing; a retry
// reuses the seq of the request it retries). The group records each
// client's latest request (a bounded table, Config.MaxSessions) and
// applies a request at most once: a retry of an applied request returns
// the action recorded for it without running the method again, and a seq
// below the latest fails with ErrStaleRequest. So retrying after
// ErrUnknownOutcome is safe.
func WithRequestID(ctx context.Context, client string, seq uint64) context.Context {
	return context.WithValue(ctx, requestIDKey{}, requestID{client, seq})
}

// performReq is a Perform as forwarded to the leader.
type performReq struct {
	M string `msgpack:"m"`
	A []byte `msgpack:"a"`
	C string `msgpack:"c,omitempty"`
	Q uint64 `msgpack:"q,omitempty"`
}

// reply is the leader's answer to a forwarded Perform or ReadIndex.
type reply struct {
	I  uint64             `msgpack:"i"`           // log index of the action, or the read index
	A  msgpack.RawMessage `msgpack:"a,omitempty"` // the action
	E  uint8              `msgpack:"e,omitempty"` // error code, 0 = none
	M  string             `msgpack:"m,omitempty"` // error message
	L  string             `msgpack:"l,omitempty"` // leader ID hint
	LA string             `msgpack:"la,omitempty"`
	X  int                `msgpack:"x,omitempty"` // 1 + index in Config.Errors
}

// Error codes of reply.E. Append-only.
const (
	codeNone uint8 = iota
	codeNotLeader
	codeNoLeader
	codeUnknownOutcome
	codeUnknownMethod
	codeNoAction
	codeMethod
	codeClosed
	codeStale
	codeOverloaded
)

// Perform runs method on the leader with args (msgpack-encoded) and
// returns the action it dispatched once the action is committed and
// applied on this node, so State right after Perform shows it. From a
// follower the request is forwarded to the leader through the kernel.
//
// Errors: a Method's error (unchanged on the leader; a *MethodError
// elsewhere, wrapping its Config.Errors sentinel), ErrNoAction,
// ErrUnknownMethod, ErrStaleRequest (nothing appended); ErrNoLeader
// wrapping ctx's error when no leader appeared in time (nothing
// appended), and the last refusal seen, if any (a leader's ErrOverloaded,
// a *NotLeaderError from a node taken for the leader, or the kernel's
// error sending to it); ErrUnknownOutcome when the action may or may not have
// committed; ErrOverloaded; ErrClosed. Perform retries by itself only
// where nothing can have been appended (a leader change before the
// request reached Raft, an unreachable leader before sending). ctx
// without deadline gets Config.PerformTimeout.
func (s *Store[S, A]) Perform(ctx context.Context, method string, args any) (_ A, err error) {
	defer s.observePerform(time.Now(), &err)
	var zero A
	if _, err := s.running(); err != nil {
		return zero, err
	}
	b, err := marshal(args)
	if err != nil {
		return zero, fmt.Errorf("conflux: encode args of %q: %w", method, err)
	}
	req := performReq{M: method, A: b}
	if id, ok := ctx.Value(requestIDKey{}).(requestID); ok {
		if id.client == "" || len(id.client) > MaxClientLen {
			return zero, fmt.Errorf("conflux: request ID client must be 1..%d bytes", MaxClientLen)
		}
		req.C, req.Q = id.client, id.seq
	}
	ctx, cancel, err := s.admitCtx(ctx)
	if err != nil {
		return zero, err
	}
	defer s.release(cancel)
	rp, a, local, err := s.route(ctx, "perform", &req)
	if err != nil {
		return zero, err
	}
	if !local {
		if a, err = unmarshalAction[A](rp.A); err != nil {
			return zero, fmt.Errorf("conflux: decode action of %q: %w", method, err)
		}
	}
	if err := s.WaitApplied(ctx, rp.I); err != nil {
		return a, fmt.Errorf("conflux: committed at index %d, not yet applied here: %w", rp.I, err)
	}
	return a, nil
}

// unmarshalAction decodes an action from another node. (Apart from
// Perform, so that only this path pays for the value the decoder
// writes through a pointer.)
func unmarshalAction[A any](b []byte) (A, error) {
	var a A
	err := msgpackcheck.Unmarshal(b, &a)
	return a, err
}

// admitCtx is the start of a Perform or Read: it takes a pending slot,
// failing with ErrOverloaded when MaxPending are taken, and gives ctx
// Config.PerformTimeout when it has no deadline. The caller defers
// release(cancel).
func (s *Store[S, A]) admitCtx(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if !s.admit() {
		return ctx, nil, ErrOverloaded
	}
	ctx, cancel := s.withTimeout(ctx)
	return ctx, cancel, nil
}

// release ends what admitCtx began: it cancels the request's context and
// gives back its pending slot.
func (s *Store[S, A]) release(cancel context.CancelFunc) {
	cancel()
	s.pending.Add(-1)
}

// admit takes a pending slot, false when MaxPending are taken.
func (s *Store[S, A]) admit() bool {
	if s.pending.Add(1) > int64(s.cfg.MaxPending) {
		s.pending.Add(-1)
		s.overloaded.Add(1)
		return false
	}
	return true
}

// route runs a perform or readindex request on the leader, locally or
// forwarded, retrying while nothing can have been appended. A perform run
// locally also returns its action (a, with local true), sparing a decode.
func (s *Store[S, A]) route(ctx context.Context, event string, req *performReq) (rep reply, a A, local bool, err error) {
	backoff := 5 * time.Millisecond
	var last error = ErrNoLeader
	var zero A
	for {
		r, err := s.running()
		if err != nil {
			return reply{}, zero, false, err
		}
		var rp reply
		var lerr error
		if r.State() == raft.Leader {
			rp, a, local, lerr = s.serve(ctx, event, req)
		} else if leader, ok := s.Leader(); ok && leader.ID != s.ring.self().ID {
			rp, err = s.forward(ctx, leader, event, req)
			if err != nil {
				if !retryable(err) {
					if errors.Is(err, kernel.ErrClosed) {
						return reply{}, zero, false, ErrClosed
					}
					return reply{}, zero, false, fmt.Errorf("%w: %s via %s: %w", ErrUnknownOutcome, event, leader.ID, err)
				}
				last = err
				rp.E = codeNoLeader
			}
		} else {
			rp.E = codeNoLeader
		}
		if rp.E != codeNotLeader && rp.E != codeNoLeader && rp.E != codeOverloaded {
			if rp.E == codeMethod && lerr != nil {
				return rp, zero, false, lerr // a Method's own error, unchanged
			}
			return rp, a, local, s.replyErr(req.M, rp)
		}
		if rp.E != codeNoLeader {
			last = s.replyErr(req.M, rp)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return reply{}, zero, false, fmt.Errorf("%w (last: %w): %w", ErrNoLeader, last, ctx.Err())
		case <-s.done:
			t.Stop()
			return reply{}, zero, false, ErrClosed
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// retryable reports whether a kernel call's error proves the request was
// not handled.
func retryable(err error) bool {
	for _, e := range []error{kernel.ErrNodeDown, kernel.ErrQueueFull, kernel.ErrUnknownNode, kernel.ErrInactiveConnection} {
		if errors.Is(err, e) {
			return true
		}
	}
	for _, c := range []string{kernel.CodeUnknownName, genserver.CodeOverloaded, genserver.CodePaused, genserver.CodeStopped} {
		if errors.Is(err, &kernel.RemoteError{Code: c}) {
			return true
		}
	}
	return false
}

// forward calls the leader's group server. It sends a copy of req, so
// that req itself stays off the heap on the leader's local path.
func (s *Store[S, A]) forward(ctx context.Context, leader notp.Node, event string, req *performReq) (reply, error) {
	k := s.ring.kernel()
	t := genserver.Target{Name: ServerName(s.cfg.Name), Node: leader}
	sent := *req
	rp, err := genserver.Call[reply](ctx, k, t, event, &sent)
	if errors.Is(err, kernel.ErrUnknownNode) {
		k.Connect(leader) // a group member outside the ring; connect and retry once
		rp, err = genserver.Call[reply](ctx, k, t, event, &sent)
	}
	return rp, err
}

// replyErr turns a reply's error code into the error Perform returns.
func (s *Store[S, A]) replyErr(method string, rp reply) error {
	switch rp.E {
	case codeNone:
		return nil
	case codeNotLeader:
		l, _ := nodeAt(rp.L, rp.LA)
		return &NotLeaderError{Leader: l}
	case codeNoLeader:
		return ErrNoLeader
	case codeUnknownOutcome:
		return fmt.Errorf("%w: %s", ErrUnknownOutcome, rp.M)
	case codeUnknownMethod:
		return fmt.Errorf("%w: %q", ErrUnknownMethod, method)
	case codeNoAction:
		return ErrNoAction
	case codeClosed:
		return fmt.Errorf("%w: %s", ErrUnknownOutcome, rp.M)
	case codeStale:
		return ErrStaleRequest
	case codeOverloaded:
		return ErrOverloaded
	case codeMethod:
		me := &MethodError{Method: method, Message: rp.M}
		if rp.X > 0 && rp.X <= len(s.cfg.Errors) {
			me.Err = s.cfg.Errors[rp.X-1]
		}
		return me
	}
	return fmt.Errorf("%w: reply code %d: %s", ErrUnknownOutcome, rp.E, rp.M)
}

// serve runs a request on this node as leader and encodes the outcome
// as a reply (errors included), for local and forwarded requests alike.
func (s *Store[S, A]) serve(ctx context.Context, event string, req *performReq) (reply, A, bool, error) {
	var rp reply
	var o proposed[A]
	switch event {
	case "perform":
		o = s.propose(ctx, req)
		rp.I, rp.A = o.idx, o.ab
	case "readindex":
		rp.I, o.err = s.readIndex(ctx)
	default:
		o.err = fmt.Errorf("conflux: unknown request %q", event)
	}
	if o.err != nil {
		s.encodeErr(&rp, o.err)
		var zero A
		return rp, zero, false, o.err
	}
	return rp, o.a, o.local, nil
}

// localErr keeps the original error of a local Perform (errors.Is on the
// Method's own error value), carried beside the reply code.
func (s *Store[S, A]) encodeErr(rp *reply, err error) {
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		rp.E, rp.L, rp.LA = codeNotLeader, nl.Leader.ID, nl.Leader.Addr()
	case errors.Is(err, ErrUnknownMethod):
		rp.E = codeUnknownMethod
	case errors.Is(err, ErrNoLeader):
		rp.E = codeNoLeader
	case errors.Is(err, ErrNoAction):
		rp.E = codeNoAction
	case errors.Is(err, ErrStaleRequest):
		rp.E = codeStale
	case errors.Is(err, ErrUnknownOutcome):
		rp.E = codeUnknownOutcome
	case errors.Is(err, ErrClosed):
		rp.E = codeClosed
	case errors.Is(err, ErrOverloaded):
		rp.E = codeOverloaded
	default:
		rp.E = codeMethod
		for i, e := range s.cfg.Errors {
			if errors.Is(err, e) {
				rp.X = i + 1
				break
			}
		}
	}
	rp.M = err.Error()
}

// A proposal is a Perform waiting for its method to run (see drain).
type proposal[A any] struct {
	ctx   context.Context
	req   performReq
	state atomic.Int32 // propQueued, then propTaken (runner) or propAbandoned (caller)
	out   chan proposed[A]
	next  *proposal[A] // the proposal queued before it (Store.queued)
}

const (
	propQueued int32 = iota
	propTaken
	propAbandoned
)

// proposed is the answer to a proposal: a future to wait for, or an
// outcome reached without appending (err, or a retry's recorded index
// and action).
type proposed[A any] struct {
	idx   uint64
	ab    msgpack.RawMessage
	a     A    // the action as the method returned it
	local bool // a is set (not for a retry's recorded action)
	err   error
}

// propose runs req's method on the provisional state and appends its
// action: it queues the proposal and runs the queue itself if propMu is
// free (see drain); the waiter goroutine (see waiterLoop) answers once
// the action is applied. The caller sleeps once, on its proposal's
// channel.
func (s *Store[S, A]) propose(ctx context.Context, req *performReq) proposed[A] {
	if s.cfg.Methods[req.M] == nil {
		return proposed[A]{err: fmt.Errorf("%w: %q", ErrUnknownMethod, req.M)}
	}
	if _, err := s.running(); err != nil {
		return proposed[A]{err: err}
	}
	s.propOnce.Do(func() {
		if !s.spawn(s.waiterLoop) {
			close(s.waiterDone) // Stop began: callers must not wait for it
		}
		s.spawn(s.drainerLoop)
	})
	pr := s.newProposal(ctx, req)
	s.enqueue(pr)
	s.drain(pr)
	select {
	case o := <-pr.out:
		s.recycle(pr)
		return o
	case <-ctx.Done():
		if pr.state.CompareAndSwap(propQueued, propAbandoned) {
			return proposed[A]{err: fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())}
		}
		select {
		case o := <-pr.out: // it may have just been answered
			s.recycle(pr)
			return o
		default:
		}
		return proposed[A]{err: fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())}
	case <-s.done:
		if pr.state.CompareAndSwap(propQueued, propAbandoned) {
			return proposed[A]{err: ErrClosed}
		}
		// Stop resolves every future: wait for the waiter's word, unless
		// it has already ended.
		select {
		case o := <-pr.out:
			s.recycle(pr)
			return o
		case <-s.waiterDone:
			select {
			case o := <-pr.out:
				s.recycle(pr)
				return o
			default:
			}
			return proposed[A]{err: fmt.Errorf("%w: %w", ErrUnknownOutcome, ErrClosed)}
		}
	}
}

// newProposal returns a queued proposal of req, reusing one whose caller
// got its answer.
func (s *Store[S, A]) newProposal(ctx context.Context, req *performReq) *proposal[A] {
	pr, _ := s.proposals.Get().(*proposal[A])
	if pr == nil {
		pr = &proposal[A]{out: make(chan proposed[A], 1)}
	}
	pr.ctx, pr.req = ctx, *req
	pr.state.Store(propQueued)
	return pr
}

// recycle keeps pr for a later Perform. Only a proposal that its caller
// got an answer for may be recycled: the answer is the last thing the
// runner and the waiter do with it (and the runner unlinks it from the
// queue before answering any). An abandoned one may still be queued or
// answered later, so it is left to the garbage collector.
func (s *Store[S, A]) recycle(pr *proposal[A]) {
	pr.ctx, pr.req = nil, performReq{}
	s.proposals.Put(pr)
}

// An appended is an action enqueued in Raft whose future the waiter
// watches.
type appended[A any] struct {
	pr  *proposal[A]
	fut raft.ApplyFuture
	ab  msgpack.RawMessage
	a   A
}

// waiterLoop waits for the appended actions' futures in log order (the
// order they were enqueued in, which Raft resolves them in) and answers
// their callers: one goroutine for all of them, so that a committed batch
// is answered without a goroutine per Perform. After Stop began it still
// answers what was queued (Stop resolves every future).
func (s *Store[S, A]) waiterLoop() {
	defer close(s.waiterDone)
	for {
		select {
		case w := <-s.waitCh:
			s.answer(w)
		case <-s.done:
			for {
				select {
				case w := <-s.waitCh:
					s.answer(w)
				default:
					return
				}
			}
		}
	}
}

func (s *Store[S, A]) answer(w appended[A]) {
	var o proposed[A]
	if err := w.fut.Error(); err != nil {
		o.err = s.applyErr(err)
	} else {
		switch res := w.fut.Response().(type) {
		case *dupResult:
			o.idx, o.ab = res.index, res.action
		case error:
			o.err = fmt.Errorf("%w: %w", ErrUnknownOutcome, res)
		default:
			o.idx, o.ab, o.a, o.local = w.fut.Index(), w.ab, w.a, true
		}
	}
	w.pr.out <- o
}

// maxProposalBatch bounds the proposals run under one holding of propMu,
// so that reads waiting for it get their turn.
const maxProposalBatch = 256

// enqueue adds pr to the queue of proposals waiting for propMu: a
// lock-free stack, newest first, that drain takes whole.
func (s *Store[S, A]) enqueue(pr *proposal[A]) {
	for {
		head := s.queued.Load()
		pr.next = head
		if s.queued.CompareAndSwap(head, pr) {
			return
		}
	}
}

// drain runs the queued proposals if propMu is free. Their methods run
// one at a time, in queue order, under propMu, and their actions are
// enqueued in Raft in that same order, so the log holds actions in the
// order their methods ran: a method that saw an in-flight action (a read
// through the log, a write that depends on an earlier one) is appended
// after it, and so commits only if that action commits, and after it.
//
// A Perform that finds propMu free runs the whole queue, other Performs'
// proposals included, on its own goroutine: on an idle leader it appends
// its action without waking another goroutine, and under load one
// holder runs each batch of waiting proposals under one holding of
// propMu, with no lock handoff per Perform. A Perform that finds propMu
// held leaves its proposal to the holder. Every holder looks at the
// queue again after releasing propMu, so no proposal is left queued; a
// Perform whose own proposal has been run (own) leaves what was queued
// meanwhile to the drainer goroutine instead of running batch after
// batch for others while its caller waits. Raft's apply channel is
// buffered (Config.BatchApplyCh), so each enqueue returns at once while
// Raft's leader loop still appends whole batches (one storage write, one
// fsync per batch).
func (s *Store[S, A]) drain(own *proposal[A]) {
	for s.queued.Load() != nil {
		if own != nil && own.state.Load() != propQueued {
			s.kickDrainer()
			return
		}
		if !s.propMu.TryLock() {
			return // the holder looks at the queue once it releases propMu
		}
		s.runQueued()
	}
}

// unlockProp releases propMu, leaving what was queued while it was held
// to the drainer goroutine. Holders of propMu other than drain (reads'
// barriers, Stop) release it this way.
func (s *Store[S, A]) unlockProp() {
	s.propMu.Unlock()
	if s.queued.Load() != nil {
		s.kickDrainer()
	}
}

func (s *Store[S, A]) kickDrainer() {
	select {
	case s.drainKick <- struct{}{}:
	default: // a kick is pending: the drainer will look at the queue
	}
}

// drainerLoop runs the queue when kicked, until Stop.
func (s *Store[S, A]) drainerLoop() {
	for {
		select {
		case <-s.done:
			return
		case <-s.drainKick:
			s.drain(nil)
		}
	}
}

// runQueued takes the queue and runs it in batches; called with propMu
// held, it returns with propMu released (drain then looks at the queue
// again).
func (s *Store[S, A]) runQueued() {
	// Unlink the whole queue, oldest first, before answering any
	// proposal: an answered one may be recycled and queued again.
	batch := s.batch[:0]
	for pr := s.queued.Swap(nil); pr != nil; {
		next := pr.next
		pr.next = nil
		batch = append(batch, pr)
		pr = next
	}
	slices.Reverse(batch)
	s.batch = nil // propMu is released between batches: another holder uses its own
	all := batch
	var late []appended[A]
	for len(batch) > 0 {
		n := min(len(batch), maxProposalBatch)
		late = s.runBatch(batch[:n], late)
		batch = batch[n:]
		if len(batch) > 0 {
			s.propMu.Unlock()
			s.propMu.Lock()
		}
	}
	s.batch = all[:0]
	s.propMu.Unlock()
	for _, w := range late {
		select {
		case s.waitCh <- w:
		case <-s.done:
			// The waiter may be gone: wait for the future here (Stop
			// resolves it).
			s.answer(w)
		}
	}
}

// runBatch runs batch's methods, then enqueues their actions back to
// back, so that Raft's leader loop finds the batch queued together and
// appends it in one go, and hands the futures to the waiter in log
// order. A future the waiter's channel has no room for (it has room for
// every admitted Perform, so none in practice) is added to late, for the
// caller to hand over once propMu is released. Called with propMu held.
func (s *Store[S, A]) runBatch(batch []*proposal[A], late []appended[A]) []appended[A] {
	ready := s.ready[:0]
	for _, pr := range batch {
		if !pr.state.CompareAndSwap(propQueued, propTaken) {
			continue // its caller gave up: nothing appended
		}
		st := s.prepare(pr.ctx, &pr.req)
		if st.data == nil {
			pr.out <- st.proposed
			continue
		}
		st.pr = pr
		ready = append(ready, st)
	}
	for i := range ready {
		ready[i].fut = ready[i].r.Apply(ready[i].data, 0)
	}
	for i, st := range ready {
		w := appended[A]{pr: st.pr, fut: st.fut, ab: st.ab, a: st.a}
		select {
		case s.waitCh <- w:
		default:
			late = append(late, w)
		}
		ready[i] = staged[A]{}
	}
	clear(batch)
	s.ready = ready[:0]
	return late
}

// staged is a proposal whose method ran: its entry, ready to enqueue.
type staged[A any] struct {
	proposed[A]
	pr   *proposal[A]
	r    *raft.Raft
	data []byte
	fut  raft.ApplyFuture
}

// prepare runs req's method and records its action among the leader's
// in-flight ones (fsm.pending) before the caller enqueues it in Raft, so
// it cannot commit before it is recorded there; without data, the
// outcome is final. Called with propMu held.
func (s *Store[S, A]) prepare(ctx context.Context, req *performReq) staged[A] {
	m := s.cfg.Methods[req.M]
	r, err := s.running()
	if err != nil {
		return staged[A]{proposed: proposed[A]{err: err}}
	}
	if err := ctx.Err(); err != nil {
		return staged[A]{proposed: proposed[A]{err: fmt.Errorf("%w: %w", ErrNoLeader, err)}}
	}
	if err := s.ensureBarrier(ctx, r); err != nil {
		return staged[A]{proposed: proposed[A]{err: err}}
	}
	if req.C != "" {
		if ss, ok := s.fsm.session(req.C); ok && req.Q <= ss.Seq {
			if req.Q < ss.Seq {
				return staged[A]{proposed: proposed[A]{err: ErrStaleRequest}}
			}
			return staged[A]{proposed: proposed[A]{idx: ss.Index, ab: ss.Action}}
		}
	}
	f := s.fsm
	f.mu.Lock()
	prov := f.prov
	f.mu.Unlock()
	a, err := callMethod(m, prov, req.A)
	if err != nil {
		return staged[A]{proposed: proposed[A]{err: err}}
	}
	s.proposal++
	p := s.proposal
	data, err := encodeEntry(&entry{C: req.C, Q: req.Q, P: p}, a)
	if err != nil {
		return staged[A]{proposed: proposed[A]{err: fmt.Errorf("conflux: encode action of %q: %w", req.M, err)}}
	}
	ab := msgpack.RawMessage(data[logentry.ActionOffset(req.C):])
	f.mu.Lock()
	f.pushPendingLocked(pending[A]{p: p, action: a})
	f.prov = s.cfg.Reduce(f.prov, a)
	f.mu.Unlock()
	return staged[A]{proposed: proposed[A]{ab: ab, a: a}, r: r, data: data}
}

// applyErr maps a failed Apply to Perform's errors and, when leadership
// is in doubt, forgets the in-flight actions.
func (s *Store[S, A]) applyErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
	s.resetPending()
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		l, _ := s.Leader()
		return &NotLeaderError{Leader: l}
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w: %w", ErrUnknownOutcome, ErrClosed, err)
	}
	return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
}

// resetPending forgets the leader's in-flight actions and the barrier.
func (s *Store[S, A]) resetPending() {
	s.barrierTerm.Store(0)
	f := s.fsm
	f.mu.Lock()
	f.clearPendingLocked()
	f.rebaseLocked()
	f.mu.Unlock()
}

// ensureBarrier applies a barrier once per term before methods run or
// reads are served, so that entries of older terms are applied first.
// Called with propMu held.
func (s *Store[S, A]) ensureBarrier(ctx context.Context, r *raft.Raft) error {
	if _, err := s.running(); err != nil {
		return err // Stop flushes Raft's apply queue once: enqueue nothing after it
	}
	term := r.CurrentTerm()
	if s.barrierTerm.Load() == term {
		return nil
	}
	if r.State() != raft.Leader {
		l, _ := s.Leader()
		return &NotLeaderError{Leader: l}
	}
	s.resetPending()
	if err := s.await(ctx, r.Barrier(0)); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			l, _ := s.Leader()
			return &NotLeaderError{Leader: l}
		}
		if errors.Is(err, raft.ErrRaftShutdown) {
			return ErrClosed
		}
		return fmt.Errorf("%w: barrier: %w", ErrNoLeader, err)
	}
	s.barrierTerm.Store(term)
	return nil
}

// callMethod runs m, turning a panic into an error.
func callMethod[S, A any](m Method[S, A], st S, args []byte) (a A, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("conflux: method panicked: %v", p)
		}
	}()
	return m(st, args)
}

// handle registers the group server's handlers. Each request runs on a
// goroutine of its own (owned by the store), so that one slow commit does
// not hold up the server's other requests.
func (s *Store[S, A]) handle() {
	for _, ev := range []string{"perform", "readindex"} {
		s.srv.Handle(ev, func(_ context.Context, r genserver.Request) ([]byte, error) {
			var req performReq
			if len(r.Data) > 0 {
				if err := msgpackcheck.Unmarshal(r.Data, &req); err != nil {
					return nil, &kernel.RemoteError{Code: genserver.CodeBadRequest, Message: err.Error()}
				}
			}
			if !s.admit() {
				return msgpack.Marshal(&reply{E: codeOverloaded, M: ErrOverloaded.Error()})
			}
			from := r.From
			ok := s.spawn(func() {
				defer s.pending.Add(-1)
				ctx, cancel := context.WithTimeout(lifecycle.DoneContext(s.done), s.cfg.PerformTimeout)
				defer cancel()
				var rp reply
				if rr, err := s.running(); err != nil {
					rp = reply{E: codeClosed, M: err.Error()}
				} else if rr.State() != raft.Leader {
					l, _ := s.Leader()
					rp = reply{E: codeNotLeader, L: l.ID, LA: l.Addr(), M: "not the leader"}
				} else {
					rp, _, _, _ = s.serve(ctx, ev, &req)
				}
				s.srv.ReplyValue(from, &rp)
			})
			if !ok {
				s.pending.Add(-1)
				return msgpack.Marshal(&reply{E: codeClosed, M: ErrClosed.Error()})
			}
			return nil, genserver.NoReply
		})
	}
	s.srv.Handle("hello", func(context.Context, genserver.Request) ([]byte, error) {
		return msgpack.Marshal(s.hello())
	})
}
