package kernel

import (
	"fmt"
	"sync"
	"time"
)

// replyHighWater is the amount of unwritten replies (and pongs and
// credits) above which a connection's reader stops reading until the
// writer has drained them: replies never wait, so a peer that sends calls
// and does not read the replies is held back here, by TCP backpressure,
// instead of growing the write buffer without bound. Only replies count:
// a reader that stopped because of its own requests would stop reading
// the replies to them, and two nodes calling each other could wait for
// each other until the write timeout. It is the mark blocking senders
// wait at (sendHighWater).
const replyHighWater = sendHighWater

// unwritten returns the bytes queued on s and not yet written.
func (s *session) unwritten() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf) + s.inflight
}

// charged returns the bytes of s's budget taken by unwritten frames and
// by messages handlers hold.
func (s *session) charged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf) + s.inflight + s.held
}

// unwrittenReplies returns the bytes of replies queued on s and not yet
// written. Called with s.mu held.
func (s *session) unwrittenReplies() int { return s.bufReplies + s.inflightReplies }

// repliesPiled reports whether more than replyHighWater bytes of replies
// are unwritten.
func (s *session) repliesPiled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unwrittenReplies() > replyHighWater
}

// batchTaken records that a flusher took n bytes (the whole buffer) to
// write. Called with s.mu held.
func (s *session) batchTaken(n int) {
	s.inflight, s.inflightReplies, s.bufReplies = n, s.bufReplies, 0
}

// batchDone records that the batch in flight is written. Called with s.mu
// held.
func (s *session) batchDone() { s.inflight, s.inflightReplies = 0, 0 }

// Hold charges len(m.Data) to the byte budget (Config.MaxPeerBytes) of
// the connection m arrived on, until release is called; call it when the
// message leaves the queue it waits in. A Handle that queues messages
// for later (an actor's mailbox) holds them, so that a peer cannot make
// the node queue more than its budget: while a connection's held bytes
// exceed MaxPeerBytes its reader stops reading (see the package doc's
// Budgets). Stats.HeldBytes is the total held now. release may be called
// more than once and from any goroutine; it does something the first
// time only. Local messages are not charged.
func (m Message) Hold() (release func()) {
	s, ok := m.From.route.(*session)
	if !ok || len(m.Data) == 0 {
		return func() {}
	}
	n := len(m.Data)
	s.mu.Lock()
	s.held += n
	s.mu.Unlock()
	s.k.stats.heldBytes.Add(int64(n))
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.held -= n
		s.cond.Broadcast() // a reader may wait for the budget
		s.mu.Unlock()
		s.k.stats.heldBytes.Add(-int64(n))
	})
}

// mustWait reports whether the reader must stop reading: too many
// replies unwritten, or more bytes held by handlers than the budget.
// Called with s.mu held.
func (s *session) mustWait() bool {
	return s.unwrittenReplies() > replyHighWater || int64(s.held) > s.k.cfg.MaxPeerBytes
}

// waitBudget is called by the reader before it reads a record:
// while more than replyHighWater bytes of replies are unwritten it flushes
// what it corked and waits for the writer, and while handlers hold more
// than MaxPeerBytes of the peer's messages it waits for them. The writer
// fails a write the peer does not take within WriteTimeout, which closes s
// and ends the wait; the wait gives up by itself after twice that.
func (s *session) waitBudget() error {
	s.mu.Lock()
	wait := s.mustWait()
	s.mu.Unlock()
	if !wait {
		return nil
	}
	k := s.k
	k.stats.budgetPauses.Add(1)
	s.uncork() // replies corked by the reader must leave before it waits for them
	limit := 2 * k.cfg.WriteTimeout
	timedOut := false
	t := time.AfterFunc(limit, func() {
		s.mu.Lock()
		timedOut = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.mu.Lock()
	for !s.closed && !timedOut && s.mustWait() {
		s.cond.Wait()
	}
	closed, n, held := s.closed, s.unwrittenReplies(), s.held
	s.mu.Unlock()
	if !closed && !timedOut {
		return nil
	}
	k.stats.budgetCloses.Add(1)
	k.warn("peer over its budget for too long", "peer", s.peer.ID, "unwritten", n, "held", held)
	return fmt.Errorf("%w: peer %s: %d bytes of replies unwritten, %d held by handlers, for %v", ErrBufferLimit, s.peer.ID, n, held, limit)
}

// addChunk appends data, a decoded chunk, to st, charging it to the session's
// budget (MaxPeerBytes, shared with the unwritten and held bytes u). It
// returns false, changing nothing, when the budget cannot take it. Each
// chunk is kept in its own exact-size slice and the stream is joined only
// when it ends, so a partial stream holds what it was sent and no more,
// and growing it leaves no garbage behind (a doubling buffer would hold
// up to twice its data and leave as much again to the collector, which is
// what a peer opening many partial streams exploits). Called with s.smu
// held.
func (s *session) addChunk(st *inStream, data []byte, u int) bool {
	n := int64(len(data)) + chunkOverhead
	if s.streamBytes+n+int64(u) > s.k.cfg.MaxPeerBytes {
		return false
	}
	st.chunks = append(st.chunks, data) // the decoder's own copy: kept, not copied again
	st.size += len(data)
	st.charge += n
	s.streamBytes += n
	return true
}

// chunkOverhead is charged per chunk on top of its data: its slice header
// and allocation rounding, so a peer sending tiny or empty chunks pays for
// what they cost.
const chunkOverhead = 48

// dropStream removes st (under id) and gives back its budget. Called with
// s.smu held.
func (s *session) dropStream(id string, st *inStream) {
	delete(s.streams, id)
	st.timer.Stop()
	s.streamBytes -= st.charge
}
