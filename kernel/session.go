package kernel

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// errSessionClosed: the connection closed under a send; the link retries
// by queueing.
var errSessionClosed = errors.New("kernel: connection closed")

// sendHighWater is the amount of unwritten bytes above which blocking
// senders (requests and stream chunks) wait for the writer. Replies never
// wait, so a connection's reader is never blocked by its own peer.
const sendHighWater = 1 << 20

// readBufferSize is a connection reader's buffer. Records larger than it
// are read straight into their own buffer, so it only needs to hold the
// small records that arrive together: 16 KiB batches calls and casts as
// well as 64 KiB did (kernel benchmarks) at a third of the memory per
// connection (BenchmarkLinkMemory: ~43 KB instead of ~140 KB for both
// ends of one).
const readBufferSize = 16 << 10

// session is one authenticated kernel connection, inbound or outbound.
// Its reader goroutine decodes records and dispatches them; its writer
// goroutine writes everything queued since its last write as one record.
type session struct {
	k        *Kernel
	c        net.Conn
	peer     notp.Node
	outbound bool
	raw      *rawWriter  // plain TCP: non-blocking direct writes; nil otherwise
	rawIn    *rawReader  // plain TCP: the reader's reads; nil otherwise
	pc       *pollConn   // TLS on Unix: the TCP conn under it; nil otherwise
	key      *ringKey    // the keyring key the hello was proven with; nil when insecure
	retired  atomic.Bool // moved off by its link: its key was removed
	recvMAC  *recordMAC  // reader goroutine only; nil when insecure
	recvSeq  uint64

	// The write side (sendMAC, sendSeq, spare, out, tail) belongs to the
	// goroutine that set flushing: a sender writing directly, or the writer
	// goroutine after a hand-off (see write.go).
	sendMAC *recordMAC // nil when insecure
	sendSeq uint64
	// sealed counts records sealed (any goroutine); sealedSeen is its
	// value at the janitor's previous round (janitor goroutine only).
	sealed     atomic.Uint64
	sealedSeen uint64
	spare      []byte // the other frame buffer, swapped with buf
	out        []byte // records being written
	tail       []byte // unwritten rest of out after a partial direct write

	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte // frames not yet taken by a flusher
	flushing bool   // a goroutine owns the write side
	corked   bool   // the reader is dispatching a record: replies wait for its flush
	closed   bool
	wake     chan struct{} // hands the write side to the writer goroutine

	// The budgets' accounting (budget.go), guarded by mu: bytes in flight
	// (taken by a flusher, not yet all written), the replies among them
	// and among buf, and bytes of messages handlers hold (Message.Hold).
	inflight, inflightReplies, bufReplies, held int

	unanswered atomic.Int64 // calls received on s minus replies sent on s
	done       chan struct{}

	smu     sync.Mutex
	streams map[string]*inStream
	envs    []wire.Envelope   // reader goroutine only
	names   map[string]string // reader goroutine only: interned target names
	nameFn  func([]byte) string

	streamBytes int64 // guarded by smu: bytes held by the partial streams
}

// handshake runs the hello exchange on c (see hello) and returns the
// session.
func (k *Kernel) handshake(c net.Conn, dialer bool, deadline time.Time) (*session, error) {
	c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	hr, err := k.hello(c, dialer)
	if err != nil {
		return nil, err
	}
	s := &session{k: k, c: c, peer: hr.peer, outbound: dialer, key: hr.key,
		wake: make(chan struct{}, 1), done: make(chan struct{}), streams: map[string]*inStream{}}
	s.cond.L = &s.mu
	if tc, ok := c.(*net.TCPConn); ok && rawWriteSupported {
		if rc, err := tc.SyscallConn(); err == nil {
			s.raw = newRawWriter(rc)
			s.rawIn = newRawReader(rc, k.poller)
		}
	}
	s.pc = basePollConn(c) // TLS: non-blocking record writes
	if hr.sendKey != nil {
		s.sendMAC = newRecordMAC(hr.sendKey)
		s.recvMAC = newRecordMAC(hr.recvKey)
	}
	return s, nil
}

// readSmallFrame reads one length-prefixed frame of at most max bytes and
// returns it with its prefix.
func readSmallFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > uint32(max) {
		return nil, fmt.Errorf("%w: handshake frame of %d bytes", wire.ErrTooLarge, n)
	}
	b := make([]byte, wire.HeaderSize+int(n))
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[wire.HeaderSize:]); err != nil {
		return nil, err
	}
	return b, nil
}

// serveKernel runs an accepted kernel connection until it closes; it
// calls release once the hello is over.
func (k *Kernel) serveKernel(c net.Conn, deadline time.Time, release func()) {
	s, err := k.handshake(c, false, deadline)
	release()
	if err != nil {
		k.stats.handshake.Add(1)
		k.warn("kernel handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	if !k.addSession(s) {
		c.Close()
		return
	}
	k.log.Info("peer connected", "peer", s.peer.ID, "dir", "in")
	k.SetNodeDown(s.peer.ID, false)
	s.readLoop()
}

// addSession registers s and starts its writer; false if the kernel closed.
func (k *Kernel) addSession(s *session) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	k.sessions[s] = struct{}{}
	k.stats.active.Add(1)
	k.wg.Add(1)
	go s.writeLoop()
	return true
}

// close closes the session once; cause is logged.
func (s *session) close(cause error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.cond.Broadcast()
	s.mu.Unlock()
	s.c.Close()
	k := s.k
	if s.outbound { // only links' sessions carry this node's calls
		err := connLost(s, cause)
		if k.closing.Load() {
			err = ErrClosed
		}
		if n := k.pending.failSession(s, err); n > 0 {
			k.stats.callsLost.Add(uint64(n))
		}
	}
	s.smu.Lock()
	for id, st := range s.streams {
		st.timer.Stop()
		delete(s.streams, id)
	}
	s.streamBytes = 0
	s.smu.Unlock()
	k.mu.Lock()
	delete(k.sessions, s)
	k.mu.Unlock()
	k.stats.active.Add(-1)
	if cause != nil && !errors.Is(cause, net.ErrClosed) && !errors.Is(cause, io.EOF) {
		k.log.Info("peer connection closed", "peer", s.peer.ID, "err", cause)
	} else {
		k.log.Debug("peer connection closed", "peer", s.peer.ID)
	}
}

// connLost is the error of the calls that were written on s when it closed
// with cause (nil when closed by this node).
func connLost(s *session, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w to %s", ErrConnectionLost, s.peer.ID)
	}
	return fmt.Errorf("%w to %s: %w", ErrConnectionLost, s.peer.ID, cause)
}

// recordMAC computes the MACs of one direction of a session.
type recordMAC struct {
	h   hash.Hash
	pre [8 + wire.HeaderSize]byte // seq || header: a field, so writing it does not allocate
}

func newRecordMAC(key []byte) *recordMAC {
	return &recordMAC{h: hmac.New(sha256.New, key)}
}

// appendMAC appends HMAC(key, seq || hdr || payload) to dst.
func appendMAC(m *recordMAC, dst []byte, seq uint64, hdr, payload []byte) []byte {
	binary.BigEndian.PutUint64(m.pre[:8], seq)
	n := 8 + copy(m.pre[8:], hdr) // hdr is always wire.HeaderSize long
	m.h.Reset()
	m.h.Write(m.pre[:n])
	m.h.Write(payload)
	return m.h.Sum(dst)
}

func (s *session) readLoop() {
	var in io.Reader = s.c
	if s.rawIn != nil {
		in = s.rawIn
	} else {
		startPolling(s.c) // TLS over a pollConn
	}
	br := bufio.NewReaderSize(in, readBufferSize)
	var buf []byte
	var macBuf [wire.MACSize]byte
	macLen := 0
	if s.recvMAC != nil {
		macLen = wire.MACSize
	}
	k := s.k
	limit := k.cfg.MaxFrameSize + wire.HeaderSize
	var hdr [wire.HeaderSize]byte // outside the loop: escapes once, not per record
	for {
		if err := s.waitBudget(); err != nil {
			s.close(err)
			return
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			s.close(err)
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > limit {
			k.stats.tooLarge.Add(1)
			k.warn("record too large", "peer", s.peer.ID, "size", n)
			s.close(ErrFrameTooLarge)
			return
		}
		if cap(buf) < n+macLen {
			buf = make([]byte, n+macLen)
		}
		buf = buf[:n+macLen]
		if _, err := io.ReadFull(br, buf); err != nil {
			k.stats.badFrame.Add(1)
			s.close(fmt.Errorf("truncated record: %w", err))
			return
		}
		payload := buf[:n]
		if s.recvMAC != nil {
			want := appendMAC(s.recvMAC, macBuf[:0], s.recvSeq, hdr[:], payload)
			if !hmac.Equal(want, buf[n:]) {
				k.stats.badMAC.Add(1)
				k.warn("record with bad MAC", "peer", s.peer.ID, "seq", s.recvSeq)
				s.close(ErrBadSignature)
				return
			}
			s.recvSeq++
		}
		k.stats.bytesIn.Add(uint64(n))
		if err := s.decodeRecord(payload); err != nil {
			if errors.Is(err, wire.ErrTooLarge) {
				k.stats.tooLarge.Add(1)
			} else {
				k.stats.badFrame.Add(1)
			}
			k.warn("bad frame", "peer", s.peer.ID, "err", err)
			s.close(err)
			return
		}
		s.cork()
		if !s.dispatchRecord() {
			return
		}
		// Replies to several records that arrived together leave in one
		// write: stay corked while the next whole record is already
		// buffered (so reading it cannot block), unless the replies
		// already fill the connection's high-water mark.
		if !recordBuffered(br, macLen) || s.repliesPiled() {
			s.uncork()
		}
		if cap(buf) > 4*sendHighWater {
			buf = nil
		}
	}
}

// recordBuffered reports whether br holds a whole record (header, payload
// and MAC), so that reading it does not wait for the network.
func recordBuffered(br *bufio.Reader, macLen int) bool {
	n := br.Buffered()
	if n < wire.HeaderSize {
		return false
	}
	h, err := br.Peek(wire.HeaderSize)
	if err != nil {
		return false
	}
	return n >= wire.HeaderSize+int(binary.BigEndian.Uint32(h))+macLen
}

// decodeRecord decodes every frame of a record into s.envs before any is
// dispatched, so a malformed record delivers nothing.
func (s *session) decodeRecord(p []byte) error {
	s.envs = s.envs[:0]
	if s.nameFn == nil {
		s.names = make(map[string]string)
		s.nameFn = s.internName
	}
	return wire.SplitFrames(p, s.k.cfg.MaxFrameSize, func(f []byte) error {
		s.envs = append(s.envs, wire.Envelope{})
		return wire.DecodeEnvelopeWith(f, &s.envs[len(s.envs)-1], s.nameFn)
	})
}

// maxInternedNames bounds the per-connection cache of target names.
const maxInternedNames = 256

// internName returns a string equal to b, reusing the one decoded last
// time for names seen before, so steady traffic to a few actors does not
// allocate a name per message.
func (s *session) internName(b []byte) string {
	if n, ok := s.names[string(b)]; ok {
		return n
	}
	n := string(b)
	if len(s.names) < maxInternedNames && len(n) <= 64 {
		s.names[n] = n
	}
	return n
}

// dispatchRecord dispatches the envelopes decoded from one record. A panic
// while dispatching one (a handler's, or the kernel's own) is recovered:
// the session is closed (see panicked) and dispatchRecord returns false,
// as it does when dispatching closed the session.
func (s *session) dispatchRecord() (ok bool) {
	i := 0
	defer func() {
		if p := recover(); p != nil {
			s.panicked(&s.envs[i], p)
			clear(s.envs)
			ok = false
		}
	}()
	for ; i < len(s.envs); i++ {
		s.dispatch(&s.envs[i])
		s.envs[i] = wire.Envelope{}
		if s.isClosed() { // e.g. a peer over its budget: the rest is not served
			clear(s.envs[i:])
			return false
		}
	}
	return true
}

// panicked handles a panic p raised while dispatching e: it logs it with
// the peer, the handler name and the stack, counts it, answers the caller
// (if e is a call) with CodeHandlerPanic, flushes the replies so far and
// closes the session. The session goes, not the process: the panic may have
// left the connection's state (a half-reassembled stream, a corked write)
// inconsistent, as net/http closes a connection whose handler panicked.
// The peer's link reconnects.
func (s *session) panicked(e *wire.Envelope, p any) {
	k := s.k
	k.stats.handlerPanics.Add(1)
	name := ""
	if e.Kind == wire.KindMsg {
		name = e.ID
	}
	// A peer can trigger a panic over and over (reconnecting each time):
	// at most one Error a second, the rest at Debug; Stats counts them all.
	level := slog.LevelDebug
	if k.panicLimit.allow(time.Now(), time.Second) {
		level = slog.LevelError
	}
	k.log.Log(context.Background(), level, "handler panicked; closing the connection", "peer", s.peer.ID, "actor", name,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if e.Kind == wire.KindMsg && e.Tag != "" {
		s.sendReply(e.Tag, nil, Errorf(CodeHandlerPanic, "handler %q panicked: %v", name, p))
	}
	s.closeAfterFlush(fmt.Errorf("kernel: handler %q panicked: %v", name, p))
}

// closeAfterFlush closes the session for cause once the writer has sent
// what is buffered (an error reply explaining the close, among others),
// waiting at most closeFlushTimeout, as the peer may not read. Reader
// goroutine only.
func (s *session) closeAfterFlush(cause error) {
	s.uncork()
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	waitIdle(ctx, s)
	cancel()
	s.close(cause)
}

// closeFlushTimeout bounds how long a connection that closeAfterFlush
// closes waits for its buffered writes.
const closeFlushTimeout = time.Second

func (s *session) dispatch(e *wire.Envelope) {
	k := s.k
	k.stats.framesIn.Add(1)
	switch e.Kind {
	case wire.KindMsg:
		from := From{Node: s.peer, Tag: e.Tag, route: s}
		if e.Tag != "" && (e.Stream == nil || e.Stream.Done) {
			s.unanswered.Add(1)
		}
		if e.Stream != nil {
			s.onChunk(e, from)
			return
		}
		k.deliver(e.ID, from, e.Data)
	case wire.KindReply, wire.KindPong:
		k.onReply(s.peer, e, s)
	case wire.KindCredit:
		k.onCredit(s.peer.ID, e)
	case wire.KindPing:
		if e.Tag != "" {
			s.reply(&wire.Envelope{Kind: wire.KindPong, ID: e.Tag})
		}
	}
}

// reply sends a reply over this session, or over any other live
// connection to the peer if this one closed; counted when none exists.
func (s *session) reply(e *wire.Envelope) error {
	if err := s.send(e, modeReply); err == nil {
		return nil
	}
	if o := s.k.sessionTo(s.peer.ID); o != nil && o.send(e, modeReply) == nil {
		return nil
	}
	s.k.stats.droppedReplies.Add(1)
	return fmt.Errorf("%w: reply to %s", ErrInactiveConnection, s.peer.ID)
}

// sessionTo returns a live session to the node, preferring the link.
func (k *Kernel) sessionTo(id string) *session {
	if l := k.link(id); l != nil {
		if s := l.session(); s != nil {
			return s
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for s := range k.sessions {
		if s.peer.ID == id && !s.isClosed() {
			return s
		}
	}
	return nil
}

func (s *session) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// sendReply implements replyRoute.
func (s *session) sendReply(tag string, data []byte, rerr *RemoteError) error {
	if len(data) <= ChunkSize {
		e := wire.Envelope{Kind: wire.KindReply, ID: tag, Err: toWire(rerr), Data: data}
		return s.reply(&e)
	}
	return sendChunked(data, func(e *wire.Envelope) error {
		e.Kind, e.ID, e.Err = wire.KindReply, tag, toWire(rerr)
		return s.reply(e)
	})
}

// sendReplyChunk implements replyRoute.
// Chunks wait while the connection's send buffer is full (backpressure).
func (s *session) sendReplyChunk(tag, stream string, done bool, data []byte, rerr *RemoteError) error {
	e := &wire.Envelope{Kind: wire.KindReply, ID: tag, Stream: &wire.Stream{ID: stream, Done: done}, Err: toWire(rerr), Data: data}
	if s.send(e, modeDirect) == nil {
		return nil
	}
	return s.reply(e)
}

func toWire(e *RemoteError) *wire.Error {
	if e == nil {
		return nil
	}
	return &wire.Error{Code: e.Code, Message: e.Message, Fields: e.Fields}
}

func fromWire(e *wire.Error, n notp.Node) *RemoteError {
	return &RemoteError{Code: e.Code, Message: e.Message, Fields: e.Fields, Node: n}
}
