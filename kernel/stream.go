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
	name  string
	from  From
	buf   []byte
	timer *time.Timer
}

// onChunk adds a request chunk to its stream and delivers the whole
// message at the end. Runs on the reader goroutine.
func (s *session) onChunk(e *wire.Envelope, from From) {
	k := s.k
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
	if e.Err != nil || int64(len(st.buf)+len(e.Data)) > k.cfg.MaxStreamSize {
		delete(s.streams, e.Stream.ID)
		st.timer.Stop()
		s.smu.Unlock()
		if e.Err == nil {
			s.abort(st.from, st.name, CodeBufferLimit, fmt.Sprintf("stream exceeds %d bytes", k.cfg.MaxStreamSize))
		}
		return
	}
	st.buf = append(st.buf, e.Data...)
	if !e.Stream.Done {
		st.timer.Reset(k.cfg.StreamTimeout)
		s.smu.Unlock()
		return
	}
	delete(s.streams, e.Stream.ID)
	st.timer.Stop()
	s.smu.Unlock()
	k.deliver(st.name, st.from, st.buf)
}

// expire ends a stream that got no chunk for StreamTimeout.
func (s *session) expire(id string, st *inStream) {
	s.smu.Lock()
	if s.streams[id] != st {
		s.smu.Unlock()
		return
	}
	delete(s.streams, id)
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
// reader pushes chunks without blocking (bounded by MaxStreamSize); Read
// consumes them.
type streamReader struct {
	k      *Kernel
	tag    string
	p      *pending
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	chunks [][]byte
	size   int64
	err    error // terminal error, io.EOF at a clean end
	notify chan struct{}
}

func (r *streamReader) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// push adds a reply message. Runs on a connection reader.
func (r *streamReader) push(k *Kernel, node notp.Node, e *wire.Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
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
			if n == len(r.chunks[0]) {
				r.chunks[0] = nil
				r.chunks = r.chunks[1:]
			} else {
				r.chunks[0] = r.chunks[0][n:]
			}
			r.mu.Unlock()
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
	if r.err == nil || r.err == io.EOF && len(r.chunks) == 0 {
		if r.err == nil {
			r.err = err
		}
	}
	r.mu.Unlock()
	r.k.pending.del(r.tag, r.p)
}

// Close cancels the stream: later chunks are dropped.
func (r *streamReader) Close() error {
	r.mu.Lock()
	if r.err == nil || r.err == io.EOF {
		r.err = errors.New("kernel: read from closed call stream")
	}
	r.chunks = nil
	r.mu.Unlock()
	r.k.pending.del(r.tag, r.p)
	r.cancel()
	return nil
}

// CallStream sends body to name on node as a stream of ChunkSize chunks
// (an io error of body ends the stream with that error; the receiver
// reassembles the request into one Message) and returns the reply as a
// stream. The reader ends with io.EOF, a *RemoteError, ErrBufferLimit past
// MaxStreamSize, or ctx's error; ctx (or CallTimeout) bounds the whole
// exchange. Closing the reader early cancels the stream.
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
		data, err := Collect(body, k.cfg.MaxStreamSize)
		if err != nil {
			r.Close()
			return nil, err
		}
		k.deliver(name, From{Node: k.Self(), Tag: tag, route: localRoute{k}}, data)
		return r, nil
	}
	err = sendStream(body, func(e *wire.Envelope) error {
		e.Kind, e.ID, e.Tag = wire.KindMsg, name, tag
		return l.send(e, true)
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
func (k *Kernel) ReplyStream(ctx context.Context, from From, body io.Reader) error {
	if from.Tag == "" {
		return ErrNoReplyTag
	}
	rt, err := k.routeOf(from)
	if err != nil {
		return err
	}
	return sendStream(&ctxReader{ctx: ctx, r: body}, func(e *wire.Envelope) error {
		if e.Stream == nil {
			return rt.sendReply(from.Tag, e.Data, nil)
		}
		var rerr *RemoteError
		if e.Err != nil {
			rerr = fromWire(e.Err, notp.Node{})
		}
		return rt.sendReplyChunk(from.Tag, e.Stream.ID, e.Stream.Done, e.Data, rerr)
	})
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
	return c.r.Read(b)
}

// Collect reads r to the end and returns its bytes, or an error wrapping
// ErrBufferLimit once more than limit bytes arrive (limit <= 0: 10 MB).
func Collect(r io.Reader, limit int64) ([]byte, error) {
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
