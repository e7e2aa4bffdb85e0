package kernel

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"

	"github.com/notp-go/notp/internal/wire"
)

// The write path of a session.
//
// Senders append encoded frames to s.buf under s.mu. The goroutine that
// finds no write in flight (flushing false) sets flushing and so owns the
// write side: it takes the buffered frames, seals them into records (MAC and
// sequence number) and writes them. Whatever is appended while a write is in
// flight is written by the next flusher in one record: "send at once when
// idle, coalesce only while a write is in flight", without timers. Because
// only the owner seals and writes, the per-direction MAC sequence numbers
// follow the byte order on the wire.
//
// Who flushes:
//   - calls, pings and stream chunks (modeDirect) write on the caller's
//     goroutine when the connection is idle, saving the hand-off to the
//     writer goroutine on the latency path;
//   - casts (modeQueue) hand the write to the writer goroutine, so a
//     goroutine casting in a loop keeps appending while the writer writes
//     large batches;
//   - replies and pongs (modeReply) never wait (the reader instead stops
//     reading while the connection's unwritten replies exceed
//     replyHighWater, see budget.go). While the connection's
//     reader dispatches a record (corked) they are only appended, and at
//     the end of the record the reader writes them all at once, so the
//     replies to a batch of requests leave in one write. When the next
//     whole record is already in the read buffer the reader stays corked
//     through it too: the replies to every record that one read brought
//     leave together (measured: this halves a busy server's writes).
//     Replies sent from other goroutines write directly, unless more calls
//     from the peer still await replies: then they go to the writer
//     goroutine, which batches the stream of replies.
//
// A direct write never blocks on a plain TCP connection: it is one
// non-blocking write(2) through syscall.RawConn (a raw system call on
// Linux, see rawsys_linux.go; the writer goroutine tries one too before
// its blocking write), and whatever the socket does not take (tail) is
// handed to the writer goroutine, which writes it first. So a reader
// flushing replies is never stalled by its peer. The reader reads the
// same way (rawReader), waiting for readability in the runtime's poller.
// Under TLS the TCP conn is a pollConn: a direct write hands tls.Conn a
// record that the pollConn writes without blocking, keeping what the
// socket does not take (its tail) for the writer goroutine, ahead of
// anything written later. Where non-blocking writes are unavailable
// (non-Unix platforms), callers write directly with WriteTimeout (they
// would wait anyway) and replies go through the writer goroutine.

// sendMode says how a send may wait and who writes it.
type sendMode uint8

const (
	modeQueue  sendMode = iota // casts: wait at high water; written by the writer goroutine
	modeDirect                 // calls, pings, stream chunks: wait at high water; written directly when idle
	modeReply                  // replies, pongs, credits: never wait; deferred while corked; direct when idle
)

// send queues one envelope and writes it, or has it written, per mode.
// Blocking modes wait while more than sendHighWater bytes are unwritten
// and a write is in flight.
func (s *session) send(e *wire.Envelope, m sendMode) error {
	// A reply while more calls from this peer await theirs is one of a
	// busy stream of replies (an actor answering a backlog, say): batch it.
	busy := false
	if m == modeReply && e.Kind == wire.KindReply && (e.Stream == nil || e.Stream.Done) {
		busy = s.answered() > 0
	}
	s.mu.Lock()
	for m != modeReply && len(s.buf) >= sendHighWater && s.flushing && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return errSessionClosed
	}
	n := len(s.buf)
	s.buf = wire.AppendFrame(s.buf, e)
	if m == modeReply {
		s.bufReplies += len(s.buf) - n
	}
	s.k.stats.framesOut.Add(1)
	if s.flushing || (m == modeReply && s.corked) {
		s.mu.Unlock()
		return nil
	}
	s.flushing = true
	if m == modeQueue || (m == modeReply && (!s.nonBlocking() || busy)) {
		s.mu.Unlock()
		s.handOff()
		return nil
	}
	s.flushDirect()
	return nil
}

// answered counts a reply sent on s and returns how many calls received on
// s still await theirs (an estimate: replies may leave over another
// connection, and handlers need not reply at all; a wrong estimate only
// costs batching or a hand-off).
func (s *session) answered() int64 {
	for {
		n := s.unanswered.Load()
		if n <= 0 {
			return 0
		}
		if s.unanswered.CompareAndSwap(n, n-1) {
			return n - 1
		}
	}
}

// sendRaw queues an already encoded frame (from a link's queue) for the
// writer goroutine.
func (s *session) sendRaw(frame []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.buf = append(s.buf, frame...)
	s.k.stats.framesOut.Add(1)
	if s.flushing {
		s.mu.Unlock()
		return
	}
	s.flushing = true
	s.mu.Unlock()
	s.handOff()
}

// cork defers replies until uncork; called by the reader before it
// dispatches a record.
func (s *session) cork() {
	s.mu.Lock()
	s.corked = true
	s.mu.Unlock()
}

// uncork ends a record's dispatch and writes the replies it produced (one
// non-blocking write where possible: measured, this beats handing a batch
// of replies to the writer goroutine even for large batches).
func (s *session) uncork() {
	s.mu.Lock()
	s.corked = false
	if len(s.buf) == 0 || s.flushing || s.closed {
		s.mu.Unlock()
		return
	}
	s.flushing = true
	if !s.nonBlocking() {
		s.mu.Unlock()
		s.handOff()
		return
	}
	s.flushDirect()
}

// nonBlocking reports whether a direct write on s never blocks: plain TCP
// through rawWriter, or TLS over a pollConn.
func (s *session) nonBlocking() bool { return s.raw != nil || s.pc != nil }

// handOff gives the write side to the writer goroutine. The caller set
// flushing.
func (s *session) handOff() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// flushDirect writes the buffered frames on the calling goroutine. Called
// with s.mu held and flushing set by the caller; returns with s.mu
// released. It hands the write side to the writer goroutine if the socket
// did not take everything or more frames arrived meanwhile.
func (s *session) flushDirect() {
	batch := s.sealBuffered()
	var err error
	pending := false // the pollConn under TLS holds unwritten bytes
	switch {
	case s.raw != nil:
		var n int
		n, err = s.raw.write(s.out)
		if n < len(s.out) {
			s.tail = s.out[n:]
			s.k.stats.partialWrites.Add(1)
		}
	case s.pc != nil:
		if pending, err = s.pc.tryWrite(s.c, s.out); pending {
			s.k.stats.partialWrites.Add(1)
		}
	default:
		err = s.writeFull(s.out)
	}
	s.spare = recycle(batch)
	if err != nil {
		s.close(fmt.Errorf("write: %w", err))
		return
	}
	if len(s.tail) == 0 {
		s.out = recycle(s.out)
	}
	s.mu.Lock()
	if len(s.tail) > 0 || pending || (len(s.buf) > 0 && !s.closed) {
		// The writer goroutine now owns the rest: the batch stays in
		// flight until it has written the tail.
		s.mu.Unlock()
		s.handOff()
		return
	}
	s.giveUpWriteSide()
}

// sealBuffered takes the buffered frames (the spare buffer takes their
// place, so senders go on appending), wakes senders waiting for room,
// releases s.mu and seals the frames into s.out. Called with s.mu held by
// the goroutine that owns the write side. It returns the taken buffer, to
// recycle once s.out is written.
func (s *session) sealBuffered() []byte {
	batch := s.buf
	s.buf, s.spare = s.spare[:0], nil
	s.batchTaken(len(batch))
	s.cond.Broadcast()
	s.mu.Unlock()
	s.out = s.sealRecords(s.out[:0], batch)
	return batch
}

// giveUpWriteSide ends a flush: nothing is in flight any more and the next
// sender may flush. Called with s.mu held; returns with it released.
func (s *session) giveUpWriteSide() {
	s.batchDone()
	s.flushing = false
	s.cond.Broadcast()
	s.mu.Unlock()
}

// writeLoop is the writer goroutine: it runs whenever a flusher hands the
// write side over, writes the tail of a partial direct write, then every
// batch queued meanwhile, and gives the write side up when nothing is left.
func (s *session) writeLoop() {
	defer s.k.wg.Done()
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		// Let the goroutines that are ready to send (callers woken by one
		// record of replies, say) append before the batch is taken: one
		// yield, not a timer; with nothing else runnable it returns at once.
		runtime.Gosched()
		if len(s.tail) > 0 {
			err := s.writeFull(s.tail)
			s.tail = nil
			if err != nil {
				s.close(fmt.Errorf("write: %w", err))
				return
			}
		}
		if s.pc != nil {
			if err := s.pc.flush(s.k.cfg.WriteTimeout); err != nil {
				s.close(fmt.Errorf("write: %w", err))
				return
			}
		}
		for {
			s.mu.Lock()
			if len(s.buf) == 0 || s.closed {
				s.giveUpWriteSide()
				break
			}
			batch := s.sealBuffered()
			err := s.writeOut(s.out)
			s.spare, s.out = recycle(batch), recycle(s.out)
			if err != nil {
				s.close(fmt.Errorf("write: %w", err))
				return
			}
		}
	}
}

// idleKeep is the largest write buffer a connection keeps once it has
// been idle for a janitor round: a burst of large batches must not leave
// every quiet connection holding megabytes, while a busy one keeps reusing
// its buffers (dropping them whenever the writer paused measured 2× slower
// casts).
const idleKeep = 64 << 10

// janitorInterval is how often the kernel looks for idle connections whose
// write buffers to shrink.
const janitorInterval = 10 * time.Second

// janitor shrinks the write buffers of connections that wrote nothing for
// a whole round, until the kernel closes.
func (k *Kernel) janitor() {
	defer k.wg.Done()
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-k.done:
			return
		case <-t.C:
			k.shrinkIdleSessions()
		}
	}
}

// shrinkIdleSessions drops the oversized write buffers of every session
// that sealed no record since the previous call (and has no write in
// flight); it returns how many sessions it shrank.
func (k *Kernel) shrinkIdleSessions() int {
	k.mu.Lock()
	sessions := make([]*session, 0, len(k.sessions))
	for s := range k.sessions {
		sessions = append(sessions, s)
	}
	k.mu.Unlock()
	n := 0
	for _, s := range sessions {
		if s.shrinkIfIdle() {
			n++
		}
	}
	return n
}

// shrinkIfIdle drops s's write buffers over idleKeep if s sealed no record
// since the last call. The buffers belong to whoever holds flushing; with
// s.mu held and flushing false nobody does.
func (s *session) shrinkIfIdle() bool {
	sealed := s.sealed.Load()
	if sealed != s.sealedSeen {
		s.sealedSeen = sealed // busy this round; janitor-only field
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushing || s.closed {
		return false
	}
	shrunk := false
	for _, b := range []*[]byte{&s.buf, &s.spare, &s.out} {
		if cap(*b) > idleKeep && len(*b) == 0 {
			*b, shrunk = nil, true
		}
	}
	return shrunk
}

// recycle returns b emptied for reuse, or nil when it grew too large to
// keep.
func recycle(b []byte) []byte {
	if cap(b) > 4*sendHighWater {
		return nil
	}
	return b[:0]
}

// writeOut writes p for the writer goroutine: a non-blocking write first
// where possible (it usually takes everything, without the blocking path's
// bookkeeping), then the rest with the WriteTimeout deadline.
func (s *session) writeOut(p []byte) error {
	if s.raw != nil {
		n, err := s.raw.write(p)
		if err != nil {
			return err
		}
		if p = p[n:]; len(p) == 0 {
			return nil
		}
	}
	return s.writeFull(p)
}

// writeFull writes p with the WriteTimeout deadline.
func (s *session) writeFull(p []byte) error {
	s.c.SetWriteDeadline(time.Now().Add(s.k.cfg.WriteTimeout))
	_, err := s.c.Write(p)
	return err
}

// sealRecords appends frames to dst as records of at most
// MaxFrameSize+HeaderSize payload bytes, cut at frame boundaries, each with
// its length and (when secure) its MAC.
func (s *session) sealRecords(dst, b []byte) []byte {
	limit := s.k.cfg.MaxFrameSize + wire.HeaderSize
	for len(b) > 0 {
		n := 0
		for n < len(b) {
			fl := wire.HeaderSize + int(binary.BigEndian.Uint32(b[n:]))
			if n > 0 && n+fl > limit {
				break
			}
			n += fl
		}
		p := b[:n]
		start := len(dst)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		dst = append(dst, p...)
		if s.sendMAC != nil {
			dst = appendMAC(s.sendMAC, dst, s.sendSeq, dst[start:start+wire.HeaderSize], p)
			s.sendSeq++
		}
		s.k.stats.bytesOut.Add(uint64(n))
		s.k.stats.recordsOut.Add(1)
		s.sealed.Add(1)
		b = b[n:]
	}
	return dst
}

// idle reports whether everything sent has been written.
func (s *session) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || (len(s.buf) == 0 && !s.flushing)
}
