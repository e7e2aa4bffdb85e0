package gossip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
)

// Defaults of [ReconnectConfig], applied by New to zero fields.
const (
	// DefaultReconnectFirst is the default ReconnectConfig.First.
	DefaultReconnectFirst = 2 * time.Second
	// DefaultReconnectInterval is the default ReconnectConfig.Interval,
	// serf's reconnect interval.
	DefaultReconnectInterval = 30 * time.Second
	// DefaultReconnectJitter is the default ReconnectConfig.Jitter.
	DefaultReconnectJitter = 0.2
	// DefaultReconnectHorizon is the default ReconnectConfig.Horizon, the
	// same as DefaultTombstoneTTL.
	DefaultReconnectHorizon = 24 * time.Hour
	// DefaultDeadNodeReclaimTime is the memberlist DeadNodeReclaimTime
	// gossip sets when Config.Memberlist leaves it 0 (memberlist's
	// "never"): a member dead for longer may come back under its name at
	// another address. memberlist reclaims only the names of dead or
	// left members, never of a live or suspect one.
	DefaultDeadNodeReclaimTime = time.Second
	// maxReconnectsPerPoll bounds the joins one poll starts.
	maxReconnectsPerPoll = 3
)

// ReconnectConfig configures the reconnect loop, gossip's counterpart of
// serf's: ring members that memberlist reports dead, or that it does not
// know (after a restart from the flush file, or after it forgot a member
// dead for longer than its GossipToTheDeadTime), are joined through
// memberlist at their ring address, each on its own backoff, until one
// answers or the horizon passes. memberlist alone stops gossiping to a dead
// member after GossipToTheDeadTime and never contacts it again, so without
// the loop the halves of a partition that outlasted it would see each
// other dead for good. Members that left gracefully (HealthLeft) or were
// removed from the ring are never retried.
type ReconnectConfig struct {
	// First is the delay from memberlist declaring a member dead to the
	// first retry, and the first step of the per-member backoff: each
	// retry that leaves the member dead doubles its delay, up to
	// Interval. A member this node has never seen (after a restart) is
	// tried at once. It should exceed memberlist's DeadNodeReclaimTime so
	// that the first retry can already take a member back at a new
	// address. 0 = DefaultReconnectFirst (2 s); capped at Interval.
	First time.Duration
	// Interval is the longest delay between two retries of one member.
	// Shorter heals a long partition sooner, at the price of a join (a
	// TCP push/pull, or a dial that waits for memberlist's TCPTimeout)
	// per dead member and interval. 0 = DefaultReconnectInterval (30 s);
	// negative turns the loop off (memberlist's behaviour alone).
	Interval time.Duration
	// Jitter spreads every delay by a random factor in [1-Jitter,
	// 1+Jitter], so the nodes of a cluster do not retry in step.
	// 0 = DefaultReconnectJitter (0.2); negative = none; at most 0.9.
	Jitter float64
	// Horizon is how long a member is retried after memberlist declared
	// it dead (or after this node first missed it); later it is left to
	// the operator (meet) or to its own retries. It matches the tombstone
	// horizon (Config.TombstoneTTL) by default. 0 = DefaultReconnectHorizon
	// (24 h); negative = forever.
	Horizon time.Duration
}

// withDefaults fills zero fields and checks the others.
func (c ReconnectConfig) withDefaults() (ReconnectConfig, error) {
	if c.First < 0 {
		return c, fmt.Errorf("%w: Reconnect.First %v is negative", ErrInvalidConfig, c.First)
	}
	if c.Jitter > 0.9 {
		return c, fmt.Errorf("%w: Reconnect.Jitter %v above 0.9", ErrInvalidConfig, c.Jitter)
	}
	if c.Interval == 0 {
		c.Interval = DefaultReconnectInterval
	}
	if c.First == 0 {
		c.First = DefaultReconnectFirst
	}
	if c.Interval > 0 {
		c.First = min(c.First, c.Interval)
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = DefaultReconnectJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.Horizon == 0 {
		c.Horizon = DefaultReconnectHorizon
	}
	return c, nil
}

// jittered spreads d by the configured jitter.
func (c ReconnectConfig) jittered(d time.Duration) time.Duration {
	if c.Jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 - c.Jitter + 2*c.Jitter*rand.Float64()
	return time.Duration(float64(d) * f)
}

// reconnectState is the reconnect loop's record of one member (guarded by
// Ring.healthMu).
type reconnectState struct {
	since    time.Time     // memberlist declared it dead, or this node first missed it
	next     time.Time     // the earliest next attempt
	delay    time.Duration // the wait after the next failed attempt
	addr     string        // the address last tried ("" before any)
	inFlight bool          // a join is under way
	expired  bool          // past the horizon: never retried again
}

// reconnectPlan is one due attempt.
type reconnectPlan struct {
	node notp.Node
	st   *reconnectState
}

// reconnect starts joins through the ring members that are due for a
// retry, at most maxReconnectsPerPoll at once, in a tracked goroutine;
// one round at a time. Called by poll.
func (r *Ring) reconnect() {
	ml := r.mlRef.Load()
	if ml == nil || r.cfg.Reconnect.Interval < 0 || !r.joining.CompareAndSwap(false, true) {
		return
	}
	plans := r.dueReconnects(r.now())
	if len(plans) == 0 {
		r.joining.Store(false)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.joining.Store(false)
		// Concurrently: a member behind a black hole holds its join for
		// memberlist's TCPTimeout, which must not delay the others.
		var wg sync.WaitGroup
		for _, p := range plans {
			wg.Go(func() { r.reconnectOne(ml, p) })
		}
		wg.Wait()
	}()
}

// dueReconnects returns the members to join now, marking them in flight,
// and keeps the per-member records in step with the ring and health.
func (r *Ring) dueReconnects(now time.Time) []reconnectPlan {
	cfg := r.cfg.Reconnect
	ring := r.ring.Load()
	r.healthMu.Lock()
	defer r.healthMu.Unlock()
	for id := range r.reconn {
		if _, ok := ring.Get(id); !ok {
			delete(r.reconn, id) // removed: never retried
		}
	}
	var due []reconnectPlan
	for _, n := range ring.Nodes() {
		h := r.health[n.ID]
		if n.ID == r.self || (h != HealthDead && h != HealthUnknown) {
			continue
		}
		st := r.reconn[n.ID]
		if st == nil {
			st = &reconnectState{since: now, next: now, delay: cfg.First}
			if since, ok := r.deadSince[n.ID]; ok {
				st.since, st.next = since, since.Add(cfg.jittered(cfg.First))
			}
			r.reconn[n.ID] = st
		}
		if st.inFlight || st.expired {
			continue
		}
		if cfg.Horizon > 0 && now.Sub(st.since) > cfg.Horizon {
			st.expired = true
			r.log.Warn("giving up reconnecting to a ring member; meet it once it is back",
				"peer", n.ID, "addr", n.Addr(), "unreachable_since", st.since, "horizon", cfg.Horizon)
			continue
		}
		if st.addr != "" && st.addr != n.Addr() {
			// The ring learnt a new address (the member restarted
			// elsewhere): memberlist must follow it at once.
			st.next, st.delay = now, cfg.First
		}
		if now.Before(st.next) {
			continue
		}
		due = append(due, reconnectPlan{node: n, st: st})
	}
	rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	due = due[:min(len(due), maxReconnectsPerPoll)]
	for _, p := range due {
		p.st.inFlight = true
	}
	return due
}

// reviveLocked makes every member the loop retries due at once, with its
// backoff reset: a dead member came back, so the network (a healed
// partition, a restarted switch) has likely come back for the others too,
// and their backoff may have grown to Interval. Caller holds healthMu.
func (r *Ring) reviveLocked() {
	now := r.now()
	for _, st := range r.reconn {
		if !st.expired {
			st.next, st.delay = now, r.cfg.Reconnect.First
		}
	}
}

// reconnectOne joins memberlist through p's member and records the
// outcome: reached (counted, EventReconnected) or not.
func (r *Ring) reconnectOne(ml *memberlist.Memberlist, p reconnectPlan) {
	addr := p.node.Addr()
	r.stats.reconnAttempts.add()
	// Not under opMu: a join may wait for memberlist's TCPTimeout. A
	// concurrent Stop or Leave makes it fail harmlessly.
	n, err := ml.Join([]string{addr})
	r.reconnectDone(p, addr, err == nil && n > 0, err)
}

// reconnectDone records the outcome of a join through p's member at addr.
// A reached member turns alive in memberlist (its record goes) once its
// refutation or new address arrives; one that stays dead although its
// address answers (another node took it over) backs off like an
// unreachable one instead of being joined every First.
func (r *Ring) reconnectDone(p reconnectPlan, addr string, reached bool, err error) {
	cfg := r.cfg.Reconnect
	r.healthMu.Lock()
	st := p.st
	st.inFlight, st.addr = false, addr
	st.next = r.now().Add(cfg.jittered(st.delay))
	st.delay = min(2*st.delay, cfg.Interval)
	r.healthMu.Unlock()
	if !reached {
		if err == nil {
			err = errors.New("no node joined")
		}
		r.log.Debug("reconnect", "peer", p.node.ID, "addr", addr, "err", err)
		return
	}
	r.stats.reconnected.add()
	r.log.Info("reconnected to a ring member", "peer", p.node.ID, "addr", addr)
	r.mu.Lock()
	ringID := r.ringID
	r.mu.Unlock()
	r.emit(EventReconnected, ringID, []notp.Node{p.node})
}
