package gossip

import (
	"context"
	"slices"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
)

// poll is the periodic work of the loop goroutine: the anti-entropy
// digest, tombstone collection, the reconnect loop and dead-node removal.
func (r *Ring) poll() {
	ringID, pending, sends, others := r.pollState()
	if pending {
		r.trySelfRemoved()
	}
	if ringID == "" {
		return
	}
	for _, o := range sends {
		for _, n := range o.to {
			r.send(n, o.msg)
		}
	}
	if others > 0 {
		r.reconnect()
	}
	r.autoRemove()
}

// pollState is poll's work under r.mu (released by defer, see
// Ring.safely): tombstone collection, the ring check and the choice of the
// digest's target.
func (r *Ring) pollState() (ringID string, pending bool, sends []outgoing, others int) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.st.gc(now.Add(-r.cfg.TombstoneTTL)); n > 0 {
		for range n {
			r.stats.gced.add()
		}
		r.touchLocked()
	}
	ringID = r.ringID
	if d, ok := r.repairRingLocked(); ok {
		r.emitDiff(ringID, d)
	}
	pending = r.pendingSelf != nil
	if ringID != "" {
		others = len(r.targetsLockedAll())
		if to := r.targetsLocked(1); len(to) > 0 {
			sends = append(sends, outgoing{to: to,
				msg: codec.EncodeMessage(&codec.Message{Type: codec.MsgSum, Ring: ringID, Sum: r.sumLocked()})})
		}
	}
	return ringID, pending, sends, others
}

// autoRemove removes ring nodes dead for AutoRemoveDeadAfter, if this node
// is the alive ring member with the lowest ID (so one node decides).
func (r *Ring) autoRemove() {
	if r.cfg.AutoRemoveDeadAfter <= 0 {
		return
	}
	now := r.now()
	ring := r.ring.Load()
	var dead []notp.Node
	lowest := true
	r.healthMu.Lock()
	for _, n := range ring.Nodes() {
		if since, ok := r.deadSince[n.ID]; ok {
			if now.Sub(since) >= r.cfg.AutoRemoveDeadAfter {
				dead = append(dead, n)
			}
			continue
		}
		h := r.health[n.ID]
		if n.ID < r.self && (h == HealthAlive || h == HealthSuspect) {
			lowest = false
		}
	}
	r.healthMu.Unlock()
	if !lowest || len(dead) == 0 {
		return
	}
	slices.SortFunc(dead, func(a, b notp.Node) int { return compareStrings(a.ID, b.ID) })
	r.log.Info("removing dead nodes", "nodes", len(dead), "after", r.cfg.AutoRemoveDeadAfter)
	// Run it off the loop: a removal's graceful disconnects may wait.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CallTimeout)
		defer cancel()
		if err := r.MRemove(ctx, dead, true); err == nil {
			for range dead {
				r.stats.autoRemoved.add()
			}
		}
	}()
}
