package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// maxStreamsPerConn bounds the partial incoming streams of one connection.
const maxStreamsPerConn = 1024

// inStream is a partial incoming streamed request.
type inStream struct {
	name   string
	from   From
	chunks [][]byte // each chunk's data as decoded; joined when the stream ends
	size   int      // the chunks' total length
	charge int64    // what the chunks cost the session's budget
	timer  *time.Timer
}

// join returns the stream's data in one slice.
func (st *inStream) join() []byte {
	if len(st.chunks) == 1 {
		return st.chunks[0]
	}
	b := make([]byte, 0, st.size)
	for _, c := range st.chunks {
		b = append(b, c...)
	}
	return b
}

// onChunk adds a request chunk to its stream and delivers the whole
// message at the end. Runs on the reader goroutine.
func (s *session) onChunk(e *wire.Envelope, from From) {
	k := s.k
	charged := s.charged()
	s.smu.Lock()
	st := s.streams[e.Stream.ID]
	if st == nil {
		if e.Stream.Done {
			// The end (or error) of a stream we do not know: it was
			// aborted or already ended. Suppressed.
			s.smu.Unlock()
			return
		}
		if len(s.streams) >= maxStreamsPerConn {
			s.smu.Unlock()
			s.abort(from, e.ID, CodeBufferLimit, "too many open streams")
			return
		}
		st = &inStream{name: e.ID, from: from}
		id := e.Stream.ID
		st.timer = time.AfterFunc(k.cfg.StreamTimeout, func() { s.expire(id, st) })
		s.streams[id] = st
	}
	if e.Err != nil || int64(st.size+len(e.Data)) > k.cfg.MaxStreamSize {
		s.dropStream(e.Stream.ID, st)
		s.smu.Unlock()
		if e.Err == nil {
			s.abort(st.from, st.name, CodeBufferLimit, fmt.Sprintf("stream exceeds %d bytes", k.cfg.MaxStreamSize))
		}
		return
	}
	if !s.addChunk(st, e.Data, charged) {
		// Over the connection's budget: abort the stream and close the
		// connection, which frees every partial stream of it at once.
		// Aborting the one stream alone would leave the peer free to
		// keep sending chunks that the node decodes only to drop,
		// garbage that can swell the heap to several times the budget.
		s.dropStream(e.Stream.ID, st)
		s.smu.Unlock()
		k.stats.budgetStreamAborts.Add(1)
		msg := fmt.Sprintf("connection's streams and replies exceed %d bytes", k.cfg.MaxPeerBytes)
		s.abort(st.from, st.name, CodeBufferLimit, msg)
		k.warn("peer's partial streams over its budget; closing the connection", "peer", s.peer.ID, "budget", k.cfg.MaxPeerBytes)
		s.closeAfterFlush(fmt.Errorf("%w: peer %s: %s", ErrBufferLimit, s.peer.ID, msg))
		return
	}
	if !e.Stream.Done {
		st.timer.Reset(k.cfg.StreamTimeout)
		s.smu.Unlock()
		return
	}
	s.dropStream(e.Stream.ID, st)
	s.smu.Unlock()
	k.deliver(st.name, st.from, st.join())
}

// expire ends a stream that got no chunk for StreamTimeout.
func (s *session) expire(id string, st *inStream) {
	s.smu.Lock()
	if s.streams[id] != st {
		s.smu.Unlock()
		return
	}
	s.dropStream(id, st)
	s.smu.Unlock()
	s.abort(st.from, st.name, CodeTimeout, "stream idle for "+s.k.cfg.StreamTimeout.String())
}

func (s *session) abort(from From, name, code, msg string) {
	s.k.stats.streamsAborted.Add(1)
	s.k.log.Debug("incoming stream aborted", "peer", s.peer.ID, "actor", name, "code", code)
	if from.Tag != "" {
		s.sendReply(from.Tag, nil, Errorf(code, "stream to %q: %s", name, msg))
	}
}

// streamReader is the io.ReadCloser of a CallStream reply. The connection
// reader pushes chunks without blocking; Read consumes them and grants the
// sender credit for more (see credit.go), so at most wire.StreamWindow
// chunks of a flow-controlled stream are buffered (and never more than
// MaxStreamSize bytes).
type streamReader struct {
	k      *Kernel
	tag    string
	p      *pending
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	chunks   [][]byte
	size     int64
	err      error    // terminal error, io.EOF at a clean end
	via      *session // the connection chunks arrive on; nil when local
	consumed int      // chunks read and not yet granted back
	local    bool     // the call went to this node
	notify   chan struct{}
}

func (r *streamReader) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// push adds a reply message. Runs on a connection reader (or, local, on
// the replier's goroutine).
func (r *streamReader) push(k *Kernel, node notp.Node, e *wire.Envelope, via *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	r.via = via
	end := e.Stream == nil || e.Stream.Done
	switch {
	case node.ID != r.p.node:
		r.err = fmt.Errorf("%w: %s answered a call to %s", ErrInvalidReply, node.ID, r.p.node)
		end = true
	case e.Err != nil:
		r.err = fromWire(e.Err, node)
		end = true
	case r.size+int64(len(e.Data)) > k.cfg.MaxStreamSize:
		r.err = fmt.Errorf("%w: reply stream from %s", ErrBufferLimit, node.ID)
		end = true
		k.grantTo(via, r.tag, 0, true)
	default:
		if len(e.Data) > 0 {
			r.chunks = append(r.chunks, e.Data)
			r.size += int64(len(e.Data))
		}
		if end {
			r.err = io.EOF
		}
	}
	if end {
		k.pending.del(r.tag, r.p)
	}
	r.wake()
}

func (r *streamReader) Read(b []byte) (int, error) {
	for {
		r.mu.Lock()
		if len(r.chunks) > 0 {
			n := copy(b, r.chunks[0])
			r.size -= int64(n)
			grant := 0
			if n == len(r.chunks[0]) {
				r.chunks[0] = nil
				r.chunks = r.chunks[1:]
				if r.err == nil {
					// Grant in batches of half a window: few credit
					// messages, and the sender never runs dry while
					// this reader keeps up.
					if r.consumed++; r.consumed >= wire.StreamWindow/2 {
						grant, r.consumed = r.consumed, 0
					}
				}
			} else {
				r.chunks[0] = r.chunks[0][n:]
			}
			via := r.via
			r.mu.Unlock()
			if grant > 0 {
				r.k.grantTo(via, r.tag, uint32(grant), false)
			}
			return n, nil
		}
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-r.notify:
		case <-r.ctx.Done():
			r.fail(fmt.Errorf("kernel: call stream: %w", r.ctx.Err()))
		case <-r.k.done:
			r.fail(ErrClosed)
		}
	}
}

func (r *streamReader) fail(err error) {
	r.mu.Lock()
	live, via := r.err == nil, r.via
	if live {
		r.err = err
	}
	r.mu.Unlock()
	r.k.pending.del(r.tag, r.p)
	if live {
		r.k.grantTo(via, r.tag, 0, true)
	}
}

// Close cancels the stream: the sender is told to stop and later chunks
// are dropped.
func (r *streamReader) Close() error {
	r.mu.Lock()
	live, via := r.err == nil, r.via
	if r.err == nil || r.err == io.EOF {
		r.err = errors.New("kernel: read from closed call stream")
	}
	r.chunks = nil
	r.mu.Unlock()
	r.k.pending.del(r.tag, r.p)
	r.cancel()
	if live && (via != nil || r.local) {
		r.k.grantTo(via, r.tag, 0, true)
	}
	return nil
}

// CallStream sends body to name on node as a stream of ChunkSize chunks
// (an io error of body ends the stream with that error; the receiver
// reassembles the request into one Message) and returns the reply as a
// stream. The reader ends with io.EOF, a *RemoteError, ErrBufferLimit past
// MaxStreamSize, ErrConnectionLost if the connection closes first, or ctx's
// error; ctx (or CallTimeout) bounds the whole exchange. CallStream itself
// fails at once with ErrNodeDown for a node known to be down. Closing the
// reader early cancels the stream.
func (k *Kernel) CallStream(ctx context.Context, node notp.Node, name string, body io.Reader) (io.ReadCloser, error) {
	l, err := k.target(node)
	if err != nil {
		return nil, err
	}
	ctx, cancel := k.callCtx(ctx)
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithCancel(ctx)
	}
	tag := k.tags.next()
	r := &streamReader{k: k, tag: tag, ctx: ctx, cancel: cancel, notify: make(chan struct{}, 1)}
	r.p = &pending{node: node.ID, stream: r}
	k.pending.put(tag, r.p)
	if l == nil {
		r.local = true
		data, err := collect(body, k.cfg.MaxStreamSize)
		if err != nil {
			r.Close()
			return nil, err
		}
		k.deliver(name, From{Node: k.Self(), Tag: tag, route: localRoute{k}}, data)
		return r, nil
	}
	err = sendStream(body, func(e *wire.Envelope) error {
		e.Kind, e.ID, e.Tag = wire.KindMsg, name, tag
		return l.send(e, modeDirect)
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// sendStream reads body in ChunkSize pieces and sends them as one stream
// (a single envelope when body fits one chunk). An io error of body ends
// the stream with that error and is returned.
func sendStream(body io.Reader, send func(e *wire.Envelope) error) error {
	if body == nil {
		body = bytes.NewReader(nil) // a nil body is an empty one
	}
	buf := make([]byte, ChunkSize)
	n, rerr := io.ReadFull(body, buf)
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		return send(&wire.Envelope{Data: clone(buf[:n])})
	}
	id := randomID()
	for {
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			err := send(&wire.Envelope{Stream: &wire.Stream{ID: id, Done: true}, Err: &wire.Error{Message: rerr.Error()}})
			return errors.Join(fmt.Errorf("kernel: stream body: %w", rerr), err)
		}
		done := rerr != nil
		if err := send(&wire.Envelope{Stream: &wire.Stream{ID: id, Done: done}, Data: clone(buf[:n])}); err != nil {
			return err
		}
		if done {
			return nil
		}
		n, rerr = io.ReadFull(body, buf)
	}
}

// ReplyStream answers a call with body as a stream of chunks (for callers
// using CallStream; a Call collects the chunks into one reply). An io
// error of body ends the stream with a *RemoteError carrying its message.
//
// The stream is flow-controlled: after [StreamWindow] (16) chunks ahead
// of the caller, ReplyStream waits for the caller to read on. It returns
// ErrStreamCanceled if the caller stops reading (closes its reader or
// gives up), and ctx's error (wrapped) if ctx ends first; then the caller's
// reader ends with a CodeTimeout *RemoteError. Credit arrives through the
// connection's reader, so call ReplyStream from your own goroutine, not
// synchronously inside Handle (there a reply longer than the window would
// wait until ctx ends).
func (k *Kernel) ReplyStream(ctx context.Context, from From, body io.Reader) error {
	if from.Tag == "" {
		return ErrNoReplyTag
	}
	rt, err := k.routeOf(from)
	if err != nil {
		return err
	}
	var gone <-chan struct{}
	if s, ok := rt.(*session); ok {
		gone = s.done
	}
	var c *credit
	var streamID string
	var stalled error // why waiting for credit failed
	err = sendStream(&ctxReader{ctx: ctx, r: body}, func(e *wire.Envelope) error {
		if e.Stream == nil {
			return rt.sendReply(from.Tag, e.Data, nil)
		}
		if c == nil {
			c = k.openCredit(from.Node.ID, from.Tag)
			streamID = e.Stream.ID
		}
		if err := c.take(ctx, k, gone); err != nil {
			stalled = err
			return err
		}
		var rerr *RemoteError
		if e.Err != nil {
			rerr = fromWire(e.Err, notp.Node{})
		}
		return rt.sendReplyChunk(from.Tag, e.Stream.ID, e.Stream.Done, e.Data, rerr)
	})
	if c != nil {
		k.closeCredit(from.Node.ID, from.Tag, c)
		if stalled != nil && !errors.Is(stalled, ErrStreamCanceled) && !errors.Is(stalled, ErrClosed) {
			// Out of credit until ctx ended: end the caller's stream
			// rather than leave it waiting for its own deadline. Best
			// effort, without credit.
			rt.sendReplyChunk(from.Tag, streamID, true, nil, Errorf(CodeTimeout, "reply stream stopped: %v", stalled))
		}
	}
	return err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.r == nil {
		return 0, io.EOF // a nil body is an empty one
	}
	return c.r.Read(b)
}

// collect reads r to the end and returns its bytes, or an error wrapping
// ErrBufferLimit once more than limit bytes arrive (limit <= 0: 10 MB).
func collect(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxStreamSize
	}
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBufferLimit, limit)
	}
	return b.Bytes(), nil
}
