package kernel

import (
	"fmt"
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

// waitRepliesDrained is called by the reader before it reads a record:
// while more than replyHighWater bytes of replies are unwritten it flushes
// what it corked and waits for the writer. The writer fails a write the peer does
// not take within WriteTimeout, which closes s and ends the wait; the
// wait gives up by itself after twice that.
func (s *session) waitRepliesDrained() error {
	if !s.repliesPiled() {
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
	for !s.closed && !timedOut && s.unwrittenReplies() > replyHighWater {
		s.cond.Wait()
	}
	closed, n := s.closed, s.unwrittenReplies()
	s.mu.Unlock()
	if !closed && !timedOut {
		return nil
	}
	k.stats.budgetCloses.Add(1)
	k.warn("peer does not read its replies", "peer", s.peer.ID, "unwritten", n)
	return fmt.Errorf("%w: peer %s left %d bytes of replies unread for %v", ErrBufferLimit, s.peer.ID, n, limit)
}

// growStream makes room in st.buf for n more bytes, charging the growth
// of its capacity to the session's budget (MaxPeerBytes, shared with the
// unwritten bytes u). It returns false, changing nothing, when the budget
// cannot take it. Called with s.smu held.
func (s *session) growStream(st *inStream, n int, u int) bool {
	need := len(st.buf) + n
	if need <= cap(st.buf) {
		return true
	}
	k := s.k
	newCap := int(min(max(int64(need), 2*int64(cap(st.buf))), max(k.cfg.MaxStreamSize, int64(need))))
	grow := int64(newCap - cap(st.buf))
	if s.streamBytes+grow+int64(u) > k.cfg.MaxPeerBytes {
		return false
	}
	b := make([]byte, len(st.buf), newCap)
	copy(b, st.buf)
	st.buf = b
	s.streamBytes += grow
	return true
}

// dropStream removes st (under id) and gives back its budget. Called with
// s.smu held.
func (s *session) dropStream(id string, st *inStream) {
	delete(s.streams, id)
	st.timer.Stop()
	s.streamBytes -= int64(cap(st.buf))
}
