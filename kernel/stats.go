package kernel

import (
	"sync/atomic"

	"github.com/notp-go/notp/internal/latency"
)

// Stats is a snapshot of the kernel's counters.
type Stats struct {
	FramesIn, FramesOut uint64 // envelopes received / sent over the network
	BytesIn, BytesOut   uint64 // record bytes received / written
	RecordsOut          uint64 // write batches (records) written

	Calls        uint64 // calls made: Call, and one per node of MultiCall (to this node too)
	Casts        uint64 // casts sent: Cast, and one per node of Abcast (to this node too)
	CallsHandled uint64 // calls (with a reply tag, streams included) delivered to this node's handlers
	CastsHandled uint64 // casts delivered to this node's handlers
	// CallLatency is the time each Call took to return, successful or
	// not, in the fixed buckets of CallLatencyBounds.
	CallLatency Histogram

	RejectedBadMAC       uint64 // records with a wrong MAC (tampered, replayed, reordered, wrong cookie)
	RejectedBadFrame     uint64 // undecodable records, frames or envelopes
	RejectedTooLarge     uint64 // frames or records over MaxFrameSize
	RejectedHandshake    uint64 // failed or timed-out hellos (wrong cookie, garbage, silence)
	RejectedUnknownProto uint64 // connections with an unknown protocol byte
	RejectedPending      uint64 // connections closed at accept: MaxPendingConns unauthenticated ones open
	RejectedPerIP        uint64 // connections closed at accept: MaxPendingPerIP open from the same IP

	CastsUnknownName uint64 // casts to names nobody registered
	LateReplies      uint64 // replies for tags no longer waited for
	DroppedReplies   uint64 // replies with no live connection to the caller
	QueueDrops       uint64 // oldest messages dropped from a full reconnect queue
	Reconnects       uint64 // successful link (re)connections after the first
	StreamsAborted   uint64 // incoming streams ended by size limit or timeout
	CreditWaits      uint64 // times a ReplyStream waited for the caller to grant credit
	PollHits         uint64 // busy polls (Config.BusyPoll) that found data
	PollMisses       uint64 // busy polls that gave up and slept in the poller
	PollNanos        uint64 // time spent busy polling, in nanoseconds (hits and misses)
	PollCapped       uint64 // polls not made because Config.MaxPollers readers were polling
	PollContended    uint64 // polls stopped on oversubscribed cores (an attempt took over 50 µs; polling then pauses for 20 ms)

	CallsLost      uint64 // calls, pings and call streams failed with ErrConnectionLost
	CallsNodeDown  uint64 // calls, pings and call streams refused with ErrNodeDown
	CallsQueueFull uint64 // calls failed with ErrQueueFull (their request left a full reconnect queue)
	HandlerPanics  uint64 // handler panics recovered (on a connection's reader, each closed that connection)

	BudgetPauses       uint64 // times a reader stopped reading a peer over budget (replies unwritten, messages held)
	BudgetCloses       uint64 // connections closed while their reader waited for the budget
	BudgetStreamAborts uint64 // incoming streams aborted because the peer's MaxPeerBytes budget was full

	ActiveConnections  int64 // authenticated connections open now (in + out)
	PendingConnections int64 // accepted connections not yet through the hello or handed over
	HeldBytes          int64 // bytes of peers' messages that handlers hold now (Message.Hold)
}

type stats struct {
	framesIn, framesOut, bytesIn, bytesOut, recordsOut    atomic.Uint64
	badMAC, badFrame, tooLarge, handshake, unknownProto   atomic.Uint64
	castsUnknown, lateReplies, droppedReplies, queueDrops atomic.Uint64
	reconnects, streamsAborted, creditWaits               atomic.Uint64
	pollHits, pollMisses, pollNanos, pollCapped           atomic.Uint64
	pollContended                                         atomic.Uint64
	rejectedPending, rejectedPerIP                        atomic.Uint64
	budgetPauses, budgetCloses, budgetStreamAborts        atomic.Uint64
	active, pendingConns, heldBytes                       atomic.Int64

	callsLost, callsNodeDown, callsQueueFull, handlerPanics atomic.Uint64

	calls, casts, callsHandled, castsHandled atomic.Uint64
	callLatency                              latency.Histogram

	// Not in Stats: observed by tests.
	partialWrites atomic.Uint64 // direct writes the socket took only part of
	pollPeak      atomic.Int32  // most readers ever polling at once
}

// Stats returns a copy of the kernel's counters.
func (k *Kernel) Stats() Stats {
	s := &k.stats
	return Stats{
		FramesIn: s.framesIn.Load(), FramesOut: s.framesOut.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(), RecordsOut: s.recordsOut.Load(),
		Calls: s.calls.Load(), Casts: s.casts.Load(),
		CallsHandled: s.callsHandled.Load(), CastsHandled: s.castsHandled.Load(),
		CallLatency:    latencySnapshot(&s.callLatency),
		RejectedBadMAC: s.badMAC.Load(), RejectedBadFrame: s.badFrame.Load(),
		RejectedTooLarge: s.tooLarge.Load(), RejectedHandshake: s.handshake.Load(),
		RejectedUnknownProto: s.unknownProto.Load(),
		RejectedPending:      s.rejectedPending.Load(), RejectedPerIP: s.rejectedPerIP.Load(),
		CastsUnknownName: s.castsUnknown.Load(), LateReplies: s.lateReplies.Load(),
		DroppedReplies: s.droppedReplies.Load(), QueueDrops: s.queueDrops.Load(),
		Reconnects: s.reconnects.Load(), StreamsAborted: s.streamsAborted.Load(),
		CreditWaits: s.creditWaits.Load(),
		PollHits:    s.pollHits.Load(), PollMisses: s.pollMisses.Load(),
		PollNanos: s.pollNanos.Load(), PollCapped: s.pollCapped.Load(),
		PollContended: s.pollContended.Load(),
		CallsLost:     s.callsLost.Load(), CallsNodeDown: s.callsNodeDown.Load(),
		CallsQueueFull: s.callsQueueFull.Load(), HandlerPanics: s.handlerPanics.Load(),
		BudgetPauses: s.budgetPauses.Load(), BudgetCloses: s.budgetCloses.Load(),
		BudgetStreamAborts: s.budgetStreamAborts.Load(),
		ActiveConnections:  s.active.Load(), PendingConnections: s.pendingConns.Load(),
		HeldBytes: s.heldBytes.Load(),
	}
}
