package dsm

import (
	"sync/atomic"

	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/metrics"
)

// Stats are a DSM's counters: the semaphores this node owns now, and what
// its client and its hand-offs did.
type Stats struct {
	// Semaphores is the number of semaphores this node owns now and
	// Holders the places taken in them.
	Semaphores, Holders int64
	// PostsOK counts Posts that took a place; PostsFull those that gave
	// up with a *PostError (the semaphore stayed full, or each place came
	// later than its ttl); PostsFailed those that
	// failed otherwise (an owner's error, no answer, ctx ended), not those
	// refused for their arguments.
	PostsOK, PostsFull, PostsFailed uint64
	// Closes counts places given up: Close calls answered by the owner
	// and CloseAsync casts sent (including those a Post sends itself).
	Closes uint64
	// HandoffsSent counts semaphores this node handed to their new owner
	// and the owner accepted; HandoffsFailed those it will try again;
	// HandoffsReceived those this node accepted from a previous owner.
	HandoffsSent, HandoffsFailed, HandoffsReceived uint64
}

// counters are the atomics behind Stats.
type counters struct {
	postsOK, postsFull, postsFailed atomic.Uint64
	closes                          atomic.Uint64
	sent, failed, received          atomic.Uint64
}

// gauges are the owner's sizes, set by the actor goroutine and read by
// Stats on any.
type gauges struct {
	sems, holders atomic.Int64
}

// Stats returns the DSM's counters.
func (s *DSM) Stats() Stats {
	c := &s.stats
	st := Stats{
		PostsOK: c.postsOK.Load(), PostsFull: c.postsFull.Load(), PostsFailed: c.postsFailed.Load(),
		Closes:       c.closes.Load(),
		HandoffsSent: c.sent.Load(), HandoffsFailed: c.failed.Load(), HandoffsReceived: c.received.Load(),
	}
	st.Semaphores, st.Holders = s.gauges.sems.Load(), s.gauges.holders.Load()
	return st
}

// collect is the DSM's metrics.Source, registered on the node's metrics
// while the DSM is started.
func (s *DSM) collect(emit func(metrics.Sample)) {
	st := s.Stats()
	e := replicated.Emitter{Emit: emit, Prefix: "notp_dsm_", Name: s.cfg.Name}
	const postsHelp = "Posts of this node by result: ok (a place taken), full (gave up on a full semaphore), failed."
	const handoffsHelp = "Semaphores handed to their new owner by result: sent (accepted), failed (tried again later)."
	result := func(r string) metrics.Label { return metrics.Label{Name: "result", Value: r} }
	e.Gauge("semaphores", "Semaphores this node owns now.", st.Semaphores)
	e.Gauge("holders", "Places taken in the semaphores this node owns now.", st.Holders)
	e.Counter("posts_total", postsHelp, st.PostsOK, result("ok"))
	e.Counter("posts_total", postsHelp, st.PostsFull, result("full"))
	e.Counter("posts_total", postsHelp, st.PostsFailed, result("failed"))
	e.Counter("closes_total", "Places this node gave up (Close answered, CloseAsync sent).", st.Closes)
	e.Counter("handoffs_total", handoffsHelp, st.HandoffsSent, result("sent"))
	e.Counter("handoffs_total", handoffsHelp, st.HandoffsFailed, result("failed"))
	e.Counter("handoffs_received_total", "Semaphores this node accepted from their previous owner.", st.HandoffsReceived)
}
