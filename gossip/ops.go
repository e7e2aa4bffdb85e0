package gossip

import (
	"context"
	"fmt"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
)

// errSelf is returned when a removal names this node.
var errSelf = fmt.Errorf("%w: cannot remove this node (use Leave)", ErrInvalidNode)

// Meet introduces this node's ring to node (notp's meet): memberlist joins
// node's host:port, then the local state is sent to node as a join (a
// kernel call, so Meet returns once node has merged it), and node answers
// with the union of both rings, which then spreads to every member of
// both. Meeting this node or a live member of the ring only (re)joins
// memberlist and sends nothing on the ring (notp: no-op), unless this node
// was never admitted by another (its own entry is still the placeholder of
// a ring of its own). It fails with ErrNotInRing outside a ring, and if
// memberlist cannot reach node (for instance because node is in another
// ring) or node does not acknowledge the join.
func (r *Ring) Meet(ctx context.Context, node notp.Node) error {
	if err := node.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidNode, err)
	}
	unlock, err := r.lockRunning()
	if err != nil {
		return err
	}
	defer unlock()
	if node.ID == r.self {
		return nil
	}
	r.mu.Lock()
	ringID := r.ringID
	// A no-op only between admitted members: while this node's own entry
	// is the placeholder of a ring of its own (it started, left or was
	// removed since anyone added it), memberlist may already have merged
	// node's state, yet node has not admitted this node.
	member := r.st.live(node.ID) && r.st.entries[r.self].Version > 0
	r.mu.Unlock()
	if ringID == "" {
		return ErrNotInRing
	}
	if err := r.mlJoin(ctx, []string{node.Addr()}); err != nil && !member {
		return fmt.Errorf("gossip: meeting %s: %w", node, err)
	}
	if member {
		return nil
	}
	r.mu.Lock()
	msg := r.stateMsgFloorLocked(codec.MsgJoin, 0, r.selfFloor)
	r.mu.Unlock()
	if err := r.call(ctx, node, msg); err != nil {
		return fmt.Errorf("gossip: meeting %s: %w", node, err)
	}
	r.emit(EventSend, ringID, []notp.Node{node})
	return nil
}

// call sends msg to the ring handler on node as a kernel call and waits
// for the acknowledgement (CallTimeout when ctx has no deadline).
func (r *Ring) call(ctx context.Context, node notp.Node, msg []byte) error {
	name := r.handlerNameNow()
	if name == "" {
		return ErrNotInRing
	}
	r.stats.sent.add()
	if r.testSend != nil {
		r.testSend(node, msg)
		return nil
	}
	if err := r.k.Connect(node); err != nil {
		r.stats.sendErr.add()
		return err
	}
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	if _, err := r.k.Call(ctx, node, name, msg); err != nil {
		r.stats.sendErr.add()
		return err
	}
	return nil
}

// Insert adds node with weight tokens (≤ 0: RFactor). It is a no-op if a
// node with that ID is in the ring (address differences ignored, as in
// notp; use Update). force is accepted for notp compatibility: changes are
// applied at once, serialised with every other change (notp deferred an
// unforced change while ring streams were partly received, which cannot
// happen here), so force only makes removals drop queued messages; see
// Remove.
func (r *Ring) Insert(ctx context.Context, node notp.Node, weight int, force bool) error {
	return r.MInsert(ctx, []notp.Node{node}, weight, force)
}

// MInsert inserts nodes with one clock increment; it is a no-op if all of
// them are in the ring (present ones are ignored).
func (r *Ring) MInsert(ctx context.Context, nodes []notp.Node, weight int, force bool) error {
	weight, err := r.checkArgs(nodes, weight)
	if err != nil {
		return err
	}
	return r.change(ctx, force, func(st *state) bool {
		changed := false
		for _, n := range nodes {
			if !st.live(n.ID) {
				st.write(r.self, n, weight, false, r.now())
				changed = true
			}
		}
		return changed
	})
}

// Update sets node's address and weight (≤ 0: RFactor), inserting it if
// absent. As in notp it always makes a change, even to the same values.
func (r *Ring) Update(ctx context.Context, node notp.Node, weight int, force bool) error {
	weight, err := r.checkArgs([]notp.Node{node}, weight)
	if err != nil {
		return err
	}
	return r.change(ctx, force, func(st *state) bool {
		st.write(r.self, node, weight, false, r.now())
		return true
	})
}

// Remove removes node (by ID) from the ring; a no-op if absent. The removed
// node is sent the new state, so it learns that it was removed (it then
// falls back to a ring of its own, event EventSelfRemoved). Its kernel link
// is then closed: gracefully (queued messages, the notification included,
// are written first, bounded by ctx) unless force. Removing this node fails:
// use Leave.
func (r *Ring) Remove(ctx context.Context, node notp.Node, force bool) error {
	return r.MRemove(ctx, []notp.Node{node}, force)
}

// MRemove removes nodes with one clock increment; a no-op if none is in the
// ring.
func (r *Ring) MRemove(ctx context.Context, nodes []notp.Node, force bool) error {
	for _, n := range nodes {
		if n.ID == "" {
			return fmt.Errorf("%w: empty id", ErrInvalidNode)
		}
		if n.ID == r.self {
			return errSelf
		}
	}
	return r.change(ctx, force, func(st *state) bool {
		changed := false
		for _, n := range nodes {
			if e, ok := st.entries[n.ID]; ok && !e.Removed {
				st.write(r.self, e.Node, e.Weight, true, r.now())
				changed = true
			}
		}
		return changed
	})
}

func (r *Ring) checkArgs(nodes []notp.Node, weight int) (int, error) {
	for _, n := range nodes {
		if err := n.Validate(); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalidNode, err)
		}
		if len(n.ID) > MaxIDLen || len(n.Host) > MaxHostLen {
			return 0, fmt.Errorf("%w: id longer than %d bytes or host longer than %d", ErrInvalidNode, MaxIDLen, MaxHostLen)
		}
	}
	if len(nodes) > MaxNodes {
		return 0, fmt.Errorf("%w: %d nodes, max %d", ErrRingFull, len(nodes), MaxNodes)
	}
	if weight > MaxWeight {
		return 0, fmt.Errorf("%w: %d above %d", ErrInvalidWeight, weight, MaxWeight)
	}
	if weight <= 0 {
		weight = r.cfg.RFactor
	}
	return weight, nil
}

// change applies a local change f (which reports whether it changed
// anything), advances this node's clock entry, and disseminates the result.
func (r *Ring) change(ctx context.Context, force bool, f func(*state) bool) error {
	ctx, done, err := r.beginOp(ctx)
	if err != nil {
		return err
	}
	defer done()

	r.mu.Lock()
	old := r.st.snapshotEntries()
	if !f(r.st) {
		r.mu.Unlock()
		return nil
	}
	if refused := r.enforceLocked(old); len(refused) > 0 {
		// All or nothing: the change is undone, tombstones evicted for
		// it included.
		r.st.entries = old
		r.mu.Unlock()
		return fmt.Errorf("%w: %d nodes refused (at most %d entries, %d tokens)",
			ErrRingFull, len(refused), MaxNodes, r.cfg.MaxTokens)
	}
	r.st.clock.Increment(r.self)
	r.selfSync = false
	r.touchLocked()
	act := afterMerge{ringID: r.ringID, diff: diffLive(old, r.st.entries, nil)}
	if !act.diff.empty() {
		r.publishDiffLocked(act.diff)
	}
	r.emitDiff(r.ringID, act.diff)
	if r.ringID != "" {
		act.sends = r.broadcastLocked("")
		if len(act.diff.removed) > 0 {
			// Tell the removed nodes, which notp never did: otherwise a removed
			// node keeps believing it is a member and gossips a stale ring.
			act.sends = append(act.sends, outgoing{to: act.diff.removed, msg: r.stateMsgLocked(codec.MsgUpdate, 0)})
		}
	}
	removed := act.diff.removed
	act.diff.removed = nil // disconnected below, after the notification
	r.mu.Unlock()

	r.finish(&act)
	for _, n := range act.diff.updated {
		if o, ok := old[n.ID]; ok && o.Node != n && !r.cfg.LazyConnect {
			_ = r.k.Disconnect(ctx, n.ID, true)
			_ = r.k.Connect(n)
		}
	}
	for _, n := range removed {
		_ = r.k.Disconnect(ctx, n.ID, force)
	}
	return nil
}
