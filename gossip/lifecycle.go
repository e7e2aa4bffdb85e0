package gossip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/notp-go/notp/kernel"
)

// handlerName is the kernel name ring messages for ringID are sent to.
func handlerName(ringID string) string { return "gossip/" + ringID }

// Start starts the ring's goroutines (message handling, poll, flush) and,
// when ringID (or the ring id restored by Load, if ringID is "") is not
// empty, joins that ring: it registers the ring's kernel handler, starts
// memberlist and, if the state holds other members (a loaded state), joins
// their memberlist cluster in the background. ringID "" with no loaded ring
// starts the node outside any ring (Join later). A ringID different from a
// loaded one fails with ErrAlreadyInRing. The kernel must be started.
func (r *Ring) Start(ctx context.Context, ringID string) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.stopped {
		return ErrClosed
	}
	if r.started {
		return ErrAlreadyStarted
	}
	if r.k.Addr() == nil {
		return fmt.Errorf("gossip: the kernel: %w", notp.ErrNotStarted)
	}
	if ringID != "" {
		if err := codec.ValidRingID(ringID); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRingID, err)
		}
	}
	r.mu.Lock()
	loadedID := r.ringID
	r.ringID = ""
	r.fixSelfLocked()
	r.mu.Unlock()
	if ringID == "" {
		ringID = loadedID
	} else if loadedID != "" && loadedID != ringID {
		return fmt.Errorf("%w: Node already belongs to ring '%s'", ErrAlreadyInRing, loadedID)
	}
	r.started = true
	r.wg.Add(2)
	go r.loop()
	go r.watchKeys()
	if ringID != "" {
		if err := r.activate(ringID); err != nil {
			return err
		}
		r.connectAll()
		r.reconnect() // every member is unknown: tried at once
	}
	return nil
}

// fixSelfLocked makes this node's entry carry the kernel's real address
// (a restart may get another port, and New ran before the kernel started).
func (r *Ring) fixSelfLocked() {
	self := r.k.Self()
	if e, ok := r.st.entries[r.self]; ok && !e.Removed && e.Node != self {
		if e.Version == 0 {
			e.Node = self // still a placeholder
			r.st.entries[r.self] = e
		} else {
			r.st.write(r.self, self, e.Weight, false, r.now())
			r.st.clock.Increment(r.self)
		}
		r.touchLocked()
		r.publishRingLocked()
	}
}

// Stop stops the ring: it shuts memberlist down without a leave message
// and without leaving the ring (Stop is not Leave, unlike notp's stop: the
// others keep this node in the ring and see it dead until it restarts),
// unregisters the kernel handler, stops the goroutines and flushes the
// state, ring id included, so a restart from the flush file rejoins.
// Afterwards RingID is "" (as after notp's stop). It is idempotent and
// waits for the Ring's goroutines; ctx is not needed for anything that can
// block for long (the flush is a local file write).
func (r *Ring) Stop(ctx context.Context) error {
	r.opMu.Lock()
	if r.stopped {
		r.opMu.Unlock()
		return nil
	}
	r.stopped = true
	wasStarted := r.started
	r.deactivate(ctx, false)
	r.opMu.Unlock()
	close(r.stopCh)
	r.wg.Wait()
	if !wasStarted {
		return nil
	}
	err := r.flush()
	// The node is no longer active in any ring (notp's stop cleared the id),
	// but the flushed file keeps it, so a restart rejoins.
	r.mu.Lock()
	r.ringID = ""
	r.mu.Unlock()
	return err
}

// Close stops the ring at once: Stop without waiting for anything remote
// (memberlist's shutdown and the handler's release are immediate; the
// state is still flushed). It is idempotent.
func (r *Ring) Close() error { return lifecycle.StopNow(r.Stop) }

// Join makes this node a member of ringID: it fails with ErrAlreadyInRing
// ("Node already belongs to ring '<id>'") if it is in a ring. After a Leave
// it fully re-activates gossip (handler, memberlist, poll).
func (r *Ring) Join(ringID string) error {
	if err := codec.ValidRingID(ringID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRingID, err)
	}
	unlock, err := r.lockRunning()
	if err != nil {
		return err
	}
	defer unlock()
	if cur := r.RingID(); cur != "" {
		return fmt.Errorf("%w: Node already belongs to ring '%s'", ErrAlreadyInRing, cur)
	}
	return r.activate(ringID)
}

// lockRunning is the prologue of an admin operation: it takes opMu and
// checks that the ring was started and not stopped. On success the caller
// must call unlock; on error opMu is released.
func (r *Ring) lockRunning() (unlock func(), err error) {
	r.opMu.Lock()
	switch {
	case r.stopped:
		err = ErrClosed
	case !r.started:
		err = ErrNotStarted
	}
	if err != nil {
		r.opMu.Unlock()
		return nil, err
	}
	return r.opMu.Unlock, nil
}

// beginOp is lockRunning plus the operation's deadline: ctx bounded by
// CallTimeout when it has none. On success the caller must call done,
// which cancels that ctx and releases opMu.
func (r *Ring) beginOp(ctx context.Context) (_ context.Context, done func(), err error) {
	unlock, err := r.lockRunning()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := r.withTimeout(ctx)
	return ctx, func() { cancel(); unlock() }, nil
}

// activate joins ringID locally: handler, memberlist. Caller holds opMu.
func (r *Ring) activate(ringID string) error {
	name := handlerName(ringID)
	if err := r.k.Register(name, kernel.HandlerFunc(r.handle)); err != nil {
		return fmt.Errorf("gossip: registering %q: %w", name, err)
	}
	if err := r.startMemberlist(ringID); err != nil {
		r.k.Unregister(name)
		return err
	}
	r.mu.Lock()
	r.ringID = ringID
	r.handler = name
	r.epoch++
	r.touchLocked()
	r.mu.Unlock()
	r.log.Info("joined ring", "ring", ringID, "node", r.self)
	return nil
}

// deactivate leaves memberlist (gracefully if leave) and unregisters the
// handler; the ring id is cleared by the caller when appropriate. Caller
// holds opMu.
func (r *Ring) deactivate(ctx context.Context, leave bool) {
	r.stopMemberlist(ctx, leave)
	r.mu.Lock()
	name := r.handler
	r.handler = ""
	r.epoch++
	r.mu.Unlock()
	if name != "" {
		r.k.Unregister(name)
	}
	r.healthMu.Lock()
	clear(r.health)
	clear(r.deadSince)
	clear(r.reconn)
	r.healthMu.Unlock()
}

// Leave makes this node leave its ring: it announces the change (its own
// entry removed) to up to Fanout random live members as kernel calls and
// waits for one acknowledgement, trying the other members in turn if none
// answers, until ctx (CallTimeout if it has no deadline) ends; force sends
// the announcement as casts without waiting. Then it leaves memberlist,
// resets to a ring of its own, clears the ring id, disconnects from the old
// members and emits EventLeft. A node alone in its ring just clears the id.
// The node has left even when Leave returns an error (no member
// acknowledged the announcement): the others then learn of it from
// memberlist (the node is left) only, and keep it in the ring until removed.
func (r *Ring) Leave(ctx context.Context, force bool) error {
	ctx, done, err := r.beginOp(ctx)
	if err != nil {
		return err
	}
	defer done()

	r.mu.Lock()
	ringID := r.ringID
	if ringID == "" {
		r.mu.Unlock()
		return ErrNotInRing
	}
	self := r.k.Self()
	old := r.st.liveNodes()
	var announce []byte
	var targets []notp.Node
	if len(old) > 1 {
		ann := r.st.clone()
		ann.write(r.self, self, r.cfg.RFactor, true, r.now())
		ann.clock.Increment(r.self)
		r.selfFloor = max(r.selfFloor, ann.entries[r.self].Version)
		r.st.clock.Increment(r.self) // keep our own count ahead of the announcement
		r.touchLocked()
		announce = codec.EncodeMessage(&codec.Message{Type: codec.MsgLeave, Ring: ringID,
			Round: max(maxRounds(len(old)-1)-1, 0), Clock: ann.clock, Entries: ann.sortedEntries()})
		targets = r.targetsLockedAll()
		rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	}
	r.mu.Unlock()

	var annErr error
	if announce != nil {
		annErr = r.announceLeave(ctx, targets, announce, force)
	}
	r.deactivate(ctx, true)

	r.mu.Lock()
	r.ringID = ""
	r.resetLocked(self)
	r.mu.Unlock()
	r.emit(EventLeft, ringID, []notp.Node{self})
	for _, n := range old {
		if n.ID != r.self {
			_ = r.k.Disconnect(ctx, n.ID, force)
		}
	}
	r.log.Info("left ring", "ring", ringID, "node", r.self)
	return annErr
}

// announceLeave delivers the leave announcement: casts to Fanout targets
// when forced; else calls to Fanout targets at a time (healthy ones first)
// until one acknowledges, each attempt bounded by a quarter of CallTimeout
// so that a dead target does not use up ctx.
func (r *Ring) announceLeave(ctx context.Context, targets []notp.Node, msg []byte, force bool) error {
	r.mu.Lock()
	healthy := r.healthyLocked(targets)
	r.mu.Unlock()
	targets = append(healthy, slices.DeleteFunc(targets, func(n notp.Node) bool { return slices.Contains(healthy, n) })...)
	if force {
		for _, n := range targets[:min(Fanout, len(targets))] {
			r.send(n, msg)
		}
		return nil
	}
	var errs []error
	for len(targets) > 0 && ctx.Err() == nil {
		batch := targets[:min(Fanout, len(targets))]
		targets = targets[len(batch):]
		err := r.callFirst(ctx, batch, msg)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return fmt.Errorf("gossip: leave announcement not acknowledged by any member: %w", errors.Join(errs...))
}

// callFirst calls every node in parallel and returns nil as soon as one
// acknowledges (cancelling the others), or all their errors.
func (r *Ring) callFirst(ctx context.Context, nodes []notp.Node, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.cfg.CallTimeout/4, 50*time.Millisecond))
	defer cancel()
	results := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			err := r.call(ctx, n, msg)
			if err != nil {
				err = fmt.Errorf("%s: %w", n.ID, err)
			}
			results <- err
		}()
	}
	var errs []error
	for range nodes {
		err := <-results
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cancel()
		for range len(nodes) - len(errs) - 1 {
			<-results // cancelled calls end at once
		}
		return nil
	}
	return errors.Join(errs...)
}

func (r *Ring) handlerNameNow() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handler
}

// pendingRemoval is a self-removal noticed by a merge: the ring it
// happened in and the activation epoch (a Leave and Join since make it
// moot).
type pendingRemoval struct {
	ringID string
	epoch  uint64
}

// trySelfRemoved runs on the loop goroutine after a merge removed this
// node: it falls back to a ring of its own outside any ring (like Leave,
// without an announcement). It only tries opMu: an admin operation holding
// it may be waiting for another node whose loop waits for ours, so when
// busy it leaves the removal pending for the next poll.
func (r *Ring) trySelfRemoved() {
	if !r.opMu.TryLock() {
		return
	}
	defer r.opMu.Unlock()
	r.mu.Lock()
	p := r.pendingSelf
	r.pendingSelf = nil
	current := p != nil && r.ringID == p.ringID && r.epoch == p.epoch && !r.st.live(r.self)
	r.mu.Unlock()
	if r.stopped || !current {
		return
	}
	ringID := p.ringID
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CallTimeout)
	defer cancel()
	r.mu.Lock()
	old := r.st.liveNodes()
	r.mu.Unlock()
	r.deactivate(ctx, true)
	self := r.k.Self()
	r.mu.Lock()
	r.ringID = ""
	r.resetLocked(self)
	r.mu.Unlock()
	for _, n := range old {
		if n.ID != r.self {
			_ = r.k.Disconnect(ctx, n.ID, true)
		}
	}
	r.log.Info("removed from ring by another node", "ring", ringID, "node", r.self)
	r.emit(EventSelfRemoved, ringID, []notp.Node{self})
}

// loop owns the ring's periodic work and processes received messages.
func (r *Ring) loop() {
	defer r.wg.Done()
	poll := time.NewTicker(r.cfg.Interval)
	defer poll.Stop()
	flush := time.NewTicker(r.cfg.FlushInterval)
	defer flush.Stop()
	fwd, batch := 0, 0
	for {
		select {
		case <-r.stopCh:
			return
		case m := <-r.inbox:
			r.safely("message", func() { fwd = max(fwd, r.process(m)) })
			batch++
			// Forward once per burst (or every 64 messages under load).
			if len(r.inbox) == 0 || batch >= 64 {
				if fwd > 0 {
					r.safely("forward", func() { r.forward(fwd) })
				}
				fwd, batch = 0, 0
			}
		case f := <-r.control:
			r.safely("deferred work", f)
		case <-poll.C:
			r.safely("poll", r.poll)
		case <-flush.C:
			r.safely("flush", r.flushLogged)
		}
	}
}

// safely runs f, one step of the loop (or a memberlist push/pull merge),
// recovering a panic: it is logged with its stack and counted
// (Stats.Panics), and the loop goes on with the next message or tick
// instead of taking the process down. The steps
// release r.mu with defer where they hold it, so a recovered panic leaves
// it unlocked.
func (r *Ring) safely(what string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			r.stats.panics.add()
			r.log.Error("gossip: recovered a panic", "in", what, "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
		}
	}()
	f()
}

// later queues f to run on the loop goroutine. It never blocks: with a
// full queue f is dropped (the only queued work, a self-removal, is then
// already pending and re-checks the state when it runs).
func (r *Ring) later(f func()) {
	select {
	case r.control <- f:
	default:
	}
}
