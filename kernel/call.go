package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// tagBaseLifetime is how long a reply-tag base is used (notp's 1 h).
const tagBaseLifetime = time.Hour

type tagBase struct {
	prefix string
	at     time.Time
}

// tagGen makes reply tags: a random 128-bit base (hex), redrawn hourly,
// plus a process-wide counter that never resets, so tags never repeat.
type tagGen struct {
	now  func() time.Time
	mu   sync.Mutex
	base atomic.Pointer[tagBase]
	ctr  atomic.Uint64
}

func (g *tagGen) next() string {
	b := g.base.Load()
	if b == nil || g.now().Sub(b.at) >= tagBaseLifetime {
		b = g.rotate()
	}
	var buf [64]byte
	out := append(buf[:0], b.prefix...)
	out = strconv.AppendUint(out, g.ctr.Add(1), 36)
	return string(out)
}

func (g *tagGen) rotate() *tagBase {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if b := g.base.Load(); b != nil && now.Sub(b.at) < tagBaseLifetime {
		return b
	}
	var r [16]byte
	rand.Read(r[:])
	b := &tagBase{prefix: hex.EncodeToString(r[:]) + ".", at: now}
	g.base.Store(b)
	return b
}

// randomID returns a fresh random stream id.
func randomID() string {
	var r [16]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// ---- pending replies ----

const pendingShards = 32

type pendingShard struct {
	mu sync.Mutex
	m  map[string]*pending
}

// pendingMap maps reply tags to waiting callers, sharded to keep the lock
// light under many concurrent callers.
type pendingMap struct {
	seed   maphash.Seed
	shards [pendingShards]pendingShard
}

func (p *pendingMap) init() {
	p.seed = maphash.MakeSeed()
	for i := range p.shards {
		p.shards[i].m = make(map[string]*pending)
	}
}

func (p *pendingMap) shard(tag string) *pendingShard {
	return &p.shards[maphash.String(p.seed, tag)%pendingShards]
}

func (p *pendingMap) put(tag string, w *pending) {
	s := p.shard(tag)
	s.mu.Lock()
	s.m[tag] = w
	s.mu.Unlock()
}

func (p *pendingMap) get(tag string) *pending {
	s := p.shard(tag)
	s.mu.Lock()
	w := s.m[tag]
	s.mu.Unlock()
	return w
}

// failAll completes every waiting Call and Ping with err (streams watch
// the kernel's done channel themselves). Called by Close after it set
// closing: a caller that registers later sees closing (see Kernel.register).
func (p *pendingMap) failAll(err error) {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for tag, w := range s.m {
			if w.stream == nil {
				delete(s.m, tag)
				w.ch <- result{err: err}
			}
		}
		s.mu.Unlock()
	}
}

// bind records that the request of the call waiting on tag was handed to
// s, so that s closing fails the call (failSession). It reports whether
// the call is still waited for. bind runs before the request is given to
// s: a close that follows the send then always finds the binding.
func (p *pendingMap) bind(tag string, s *session) bool {
	return p.update(tag, func(w *pending) { w.sess = s })
}

// unbind undoes bind(tag, s) after s refused the request (it had closed),
// so the request can be queued for the next connection. It reports whether
// the call is still waited for: false when s's close already failed it.
func (p *pendingMap) unbind(tag string, s *session) bool {
	return p.update(tag, func(w *pending) {
		if w.sess == s {
			w.sess = nil
		}
	})
}

// update runs f on the waiter of tag under its shard's lock and reports
// whether there was one.
func (p *pendingMap) update(tag string, f func(*pending)) bool {
	sh := p.shard(tag)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.m[tag]
	if w == nil {
		return false
	}
	f(w)
	return true
}

// take removes tag and returns its waiter, nil if nobody waits on it.
func (p *pendingMap) take(tag string) *pending {
	sh := p.shard(tag)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.m[tag]
	delete(sh.m, tag)
	return w
}

// failSession completes with err every call, ping and call stream whose
// request went out on s, which has just closed: their replies could only
// have come back over s (as net/rpc fails its pending calls when its read
// loop ends). It returns how many it failed.
func (p *pendingMap) failSession(s *session, err error) int {
	var streams []*streamReader
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for tag, w := range sh.m {
			if w.sess != s {
				continue
			}
			delete(sh.m, tag)
			n++
			if w.stream != nil {
				streams = append(streams, w.stream)
			} else {
				w.ch <- result{err: err}
			}
		}
		sh.mu.Unlock()
	}
	for _, r := range streams {
		r.lost(err)
	}
	return n
}

// boundTo returns how many calls, pings and call streams wait on s.
func (p *pendingMap) boundTo(s *session) int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for _, w := range sh.m {
			if w.sess == s {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// del removes tag and reports whether it was there (the remover owns
// completing the call).
func (p *pendingMap) del(tag string, w *pending) bool {
	s := p.shard(tag)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[tag] != w {
		return false
	}
	delete(s.m, tag)
	return true
}

type result struct {
	data []byte
	err  error
}

// pending is one caller waiting for a reply.
type pending struct {
	node   string // the node called: replies from others are invalid
	ch     chan result
	mu     sync.Mutex
	buf    []byte        // chunks of a streamed reply to a Call
	credit int           // chunks of buf not yet granted back
	stream *streamReader // set for CallStream
	timer  *time.Timer   // CallTimeout of a Call or Ping whose ctx has no deadline
	sess   *session      // the connection the request went out on; guarded by its shard's mu
}

// failTag completes the call waiting on tag with err, if any still waits.
func (k *Kernel) failTag(tag string, err error) bool {
	p := k.pending.take(tag)
	if p == nil {
		return false
	}
	if p.stream != nil {
		p.stream.lost(err)
	} else {
		p.ch <- result{err: err}
	}
	return true
}

// newPending makes a waiter for the kernel's pool of them. The pool is
// per kernel, not per process: a waiter's channel and timer belong to the
// goroutines that made them, and when a test runs kernels inside a
// testing/synctest bubble they may not be used outside it, so a shared
// pool would hand one kernel's waiters to another's callers.
func newPending() any { return &pending{ch: make(chan result, 1)} }

// onReply routes a reply (or pong) from node to its waiting caller. via is
// the connection it arrived on (nil when local): credit for a streamed
// reply goes back over it.
func (k *Kernel) onReply(node notp.Node, e *wire.Envelope, via *session) {
	p := k.pending.get(e.ID)
	if p == nil {
		k.stats.lateReplies.Add(1)
		if e.Stream != nil && !e.Stream.Done && e.Err == nil {
			k.grantTo(via, e.ID, 0, true) // nobody reads it: stop the sender
		}
		return
	}
	if p.stream != nil {
		p.stream.push(k, node, e, via)
		return
	}
	var r result
	switch {
	case node.ID != p.node:
		r.err = fmt.Errorf("%w: %s answered a call to %s", ErrInvalidReply, node.ID, p.node)
	case e.Err != nil:
		r.err = fromWire(e.Err, node)
	case e.Stream != nil && !e.Stream.Done:
		p.mu.Lock()
		if int64(len(p.buf)+len(e.Data)) > k.cfg.MaxStreamSize {
			p.mu.Unlock()
			r.err = fmt.Errorf("%w: reply from %s", ErrBufferLimit, node.ID)
			k.grantTo(via, e.ID, 0, true)
			break
		}
		p.buf = append(p.buf, e.Data...)
		// Call collects the whole reply anyway: grant as chunks arrive.
		p.credit++
		grant := p.credit
		if grant >= wire.StreamWindow/2 {
			p.credit = 0
		}
		p.mu.Unlock()
		if grant >= wire.StreamWindow/2 {
			k.grantTo(via, e.ID, uint32(grant), false)
		}
		return
	default:
		p.mu.Lock()
		r.data = e.Data
		if p.buf != nil {
			r.data = append(p.buf, e.Data...)
			p.buf = nil
		}
		p.mu.Unlock()
	}
	if k.pending.del(e.ID, p) {
		p.ch <- r
	}
}

// localRoute answers calls made to this node itself.
type localRoute struct{ k *Kernel }

func (l localRoute) sendReply(tag string, data []byte, rerr *RemoteError) error {
	self := l.k.Self()
	l.k.onReply(self, &wire.Envelope{Kind: wire.KindReply, ID: tag, Err: toWire(rerr), Data: clone(data)}, nil)
	return nil
}

func (l localRoute) sendReplyChunk(tag, stream string, done bool, data []byte, rerr *RemoteError) error {
	l.k.onReply(l.k.Self(), &wire.Envelope{Kind: wire.KindReply, ID: tag, Stream: &wire.Stream{ID: stream, Done: done}, Err: toWire(rerr), Data: clone(data)}, nil)
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// ---- delivery ----

// deliver hands a message to the handler registered under name.
func (k *Kernel) deliver(name string, from From, data []byte) {
	if from.Tag != "" {
		k.stats.callsHandled.Add(1)
	} else {
		k.stats.castsHandled.Add(1)
	}
	v, ok := k.handlers.Load(name)
	if !ok {
		if from.Tag != "" {
			from.route.sendReply(from.Tag, nil, Errorf(CodeUnknownName, "no handler registered as %q", name))
		} else {
			k.stats.castsUnknown.Add(1)
			k.log.Debug("cast to unknown name", "actor", name, "peer", from.Node.ID)
		}
		return
	}
	if _, remote := from.route.(*session); !remote {
		// A panic on a connection's reader is recovered by the reader,
		// which closes that connection (session.panicked).
		defer k.recoverLocal(name, from)
	}
	v.(Handler).Handle(Message{Name: name, From: from, Data: data})
}

// recoverLocal recovers a handler's panic on a local message, on the
// sender's goroutine: the caller, if any, gets CodeHandlerPanic.
func (k *Kernel) recoverLocal(name string, from From) {
	p := recover()
	if p == nil {
		return
	}
	k.stats.handlerPanics.Add(1)
	k.log.Error("handler panicked", "actor", name, "peer", from.Node.ID, "panic", fmt.Sprint(p))
	if from.Tag != "" {
		from.route.sendReply(from.Tag, nil, Errorf(CodeHandlerPanic, "handler %q panicked: %v", name, p))
	}
}

// sendChunked sends data as one envelope, or as a stream of ChunkSize
// chunks with a random stream id when larger. send fills in Kind/ID/Tag.
func sendChunked(data []byte, send func(e *wire.Envelope) error) error {
	if len(data) <= ChunkSize {
		return send(&wire.Envelope{Data: data})
	}
	id := randomID()
	for len(data) > 0 {
		n := min(len(data), ChunkSize)
		e := &wire.Envelope{Stream: &wire.Stream{ID: id, Done: n == len(data)}, Data: data[:n]}
		if err := send(e); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// checkOpen returns ErrClosed after Close, ErrNotStarted before Start,
// and nil while the kernel runs.
func (k *Kernel) checkOpen() error {
	if k.closing.Load() {
		return ErrClosed
	}
	if !k.running.Load() {
		return ErrNotStarted
	}
	return nil
}

// target returns the link to node, or nil for self.
func (k *Kernel) target(node notp.Node) (*link, error) {
	if err := k.checkOpen(); err != nil {
		return nil, err
	}
	if node.ID == k.selfID() {
		return nil, nil
	}
	if l := k.link(node.ID); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node.ID)
}

func (k *Kernel) sendMsg(l *link, name, tag string, data []byte) error {
	if len(name)+len(tag) > k.cfg.MaxFrameSize-2*ChunkSize {
		return ErrFrameTooLarge
	}
	// Casts batch in the writer goroutine. A call writes at once on its own
	// goroutine unless other calls are in flight: then the writer batches.
	m := modeQueue
	if tag != "" && l.inflight.Load() <= 1 {
		m = modeDirect
	}
	if len(data) <= ChunkSize {
		e := wire.Envelope{Kind: wire.KindMsg, ID: name, Tag: tag, Data: data}
		return l.send(&e, m)
	}
	return sendChunked(data, func(e *wire.Envelope) error {
		e.Kind, e.ID, e.Tag = wire.KindMsg, name, tag
		return l.send(e, m)
	})
}

// Cast sends data to the handler registered as name on node, without
// waiting. It fails with ErrNotStarted before Start and ErrClosed after
// Close. A node that is neither this node nor a peer gives
// ErrUnknownNode (callers may ignore it); a stopped link gives
// ErrInactiveConnection. A cast to a node known to be down is queued like
// any cast while the link reconnects (it waits for nothing, and reaches the
// node if it comes back), never refused with ErrNodeDown. Payloads larger
// than ChunkSize are chunked on the wire and reassembled by the receiver.
// Cast may block while the connection's send buffer is full.
func (k *Kernel) Cast(node notp.Node, name string, data []byte) error {
	k.stats.casts.Add(1)
	l, err := k.target(node)
	if err != nil {
		return err
	}
	if l == nil {
		k.deliver(name, From{Node: k.Self(), route: localRoute{k}}, clone(data))
		return nil
	}
	return k.sendMsg(l, name, "", data)
}

// Abcast casts data to name on every node and returns the errors joined.
func (k *Kernel) Abcast(nodes []notp.Node, name string, data []byte) error {
	var errs []error
	for _, n := range nodes {
		if err := k.Cast(n, name, data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// callCtx applies Config.CallTimeout to a ctx without deadline.
func (k *Kernel) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || k.cfg.CallTimeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, k.cfg.CallTimeout)
}

// Call sends data to name on node and waits for the reply. The wait ends
// with the reply, a *RemoteError raised on node (Node set), an error
// wrapping ErrInvalidReply when another node answered, ctx's error
// (wrapped; CallTimeout applies when ctx has no deadline) or ErrClosed.
// It fails fast, without waiting for ctx: with ErrNotStarted before Start
// and ErrClosed after Close, with ErrUnknownNode for a node
// that is neither this node nor a peer, ErrNodeDown for a peer known to be
// down, ErrConnectionLost when the connection the request went out on
// closes, ErrQueueFull when the reconnect queue drops the request, and
// ErrInactiveConnection when the link is stopped (see the package doc).
func (k *Kernel) Call(ctx context.Context, node notp.Node, name string, data []byte) ([]byte, error) {
	k.stats.calls.Add(1)
	start := time.Now()
	defer func() { k.stats.callLatency.Observe(time.Since(start)) }()
	l, err := k.target(node)
	if err != nil {
		return nil, err
	}
	tag, p, err := k.register(node)
	if err != nil {
		return nil, err
	}
	if l == nil {
		k.deliver(name, From{Node: k.Self(), Tag: tag, route: localRoute{k}}, clone(data))
	} else {
		l.inflight.Add(1)
		defer l.inflight.Add(-1)
		if err := k.sendMsg(l, name, tag, data); err != nil {
			k.pending.del(tag, p)
			return nil, err
		}
	}
	return k.wait(ctx, tag, p, name, node)
}

// register makes a reply tag for a call or ping to node and registers its
// waiter. Close fails the waiters it finds; one registered after that sweep
// is refused here, so wait needs no case for the kernel's closing (one
// channel fewer for every waiting caller to enqueue on).
func (k *Kernel) register(node notp.Node) (string, *pending, error) {
	tag := k.tags.next()
	p := k.pendingPool.Get().(*pending)
	p.node = node.ID
	k.pending.put(tag, p)
	if k.closing.Load() && k.pending.del(tag, p) {
		p.node = ""
		k.pendingPool.Put(p)
		return "", nil, ErrClosed
	}
	return tag, p, nil
}

// wait waits for the reply to tag; name is the called name ("" for a ping).
func (k *Kernel) wait(ctx context.Context, tag string, p *pending, name string, node notp.Node) ([]byte, error) {
	// Config.CallTimeout bounds a ctx without deadline with a timer kept
	// in the pooled waiter: far cheaper than a derived context per call.
	var expired <-chan time.Time
	if _, ok := ctx.Deadline(); !ok && k.cfg.CallTimeout > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(k.cfg.CallTimeout)
		} else {
			p.timer.Reset(k.cfg.CallTimeout)
		}
		expired = p.timer.C
	}
	var r result
	select {
	case r = <-p.ch:
	case <-ctx.Done():
		if k.pending.del(tag, p) {
			return nil, k.waitErr(p, name, node, ctx.Err())
		}
		r = <-p.ch
	case <-expired:
		if k.pending.del(tag, p) {
			return nil, k.waitErr(p, name, node, context.DeadlineExceeded)
		}
		r = <-p.ch
	}
	k.release(p)
	return r.data, r.err
}

// waitErr returns the error of a call or ping that ended with cause before
// its reply came. p is not pooled again: a reply racing with the timeout
// may still hold it (onReply touches it before its del fails).
func (k *Kernel) waitErr(p *pending, name string, node notp.Node, cause error) error {
	if p.timer != nil {
		p.timer.Stop()
	}
	what := "ping"
	if name != "" {
		what = "call " + name
	}
	return fmt.Errorf("kernel: %s on %s: %w", what, node.ID, cause)
}

// release returns a waiter that nothing refers to any more to the pool.
func (k *Kernel) release(p *pending) {
	if p.timer != nil {
		p.timer.Stop() // Go ≥ 1.23: no stale tick survives Stop
	}
	p.buf, p.node, p.credit, p.sess = nil, "", 0, nil
	k.pendingPool.Put(p)
}

// MultiCall calls name on every node in parallel. Results are in node
// order; err is the first per-node error in node order (nil if none).
func (k *Kernel) MultiCall(ctx context.Context, nodes []notp.Node, name string, data []byte) ([]Result, error) {
	res := make([]Result, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := k.Call(ctx, n, name, data)
			res[i] = Result{Node: n, Data: d, Err: err}
		}()
	}
	wg.Wait()
	for _, r := range res {
		if r.Err != nil {
			return res, r.Err
		}
	}
	return res, nil
}

// Reply answers a call; the reply travels over the connection the request
// arrived on (or any live connection to the caller). It fails with
// ErrNoReplyTag for casts.
func (k *Kernel) Reply(from From, data []byte) error {
	return k.reply(from, data, nil)
}

// ReplyError answers a call with an error: a *RemoteError (found with
// errors.As) travels as is; any other error travels as its message, with
// the code of the first error in its chain that has a Code() string method
// (as table's *TypeError does), so the caller can match it with
// errors.Is(err, &RemoteError{Code: ...}).
func (k *Kernel) ReplyError(from From, err error) error {
	var re *RemoteError
	if !errors.As(err, &re) {
		re = &RemoteError{Message: err.Error()}
		var c coder
		if errors.As(err, &c) {
			re.Code = c.Code()
		}
	}
	return k.reply(from, nil, re)
}

// coder is an error that carries a code for the wire.
type coder interface {
	error
	Code() string
}

func (k *Kernel) reply(from From, data []byte, rerr *RemoteError) error {
	if from.Tag == "" {
		return ErrNoReplyTag
	}
	r, err := k.routeOf(from)
	if err != nil {
		return err
	}
	return r.sendReply(from.Tag, data, rerr)
}

// routeOf returns how to answer from.
func (k *Kernel) routeOf(from From) (replyRoute, error) {
	if from.route != nil {
		return from.route, nil
	}
	if from.Node.ID == k.selfID() {
		return localRoute{k}, nil
	}
	if s := k.sessionTo(from.Node.ID); s != nil {
		return s, nil
	}
	k.stats.droppedReplies.Add(1)
	return nil, fmt.Errorf("%w: reply to %s", ErrInactiveConnection, from.Node.ID)
}

// Ping checks the round trip to node at the kernel level (no handler).
// This node answers at once. It ends like a Call: ctx's error, or at once
// with ErrNotStarted, ErrClosed, ErrNodeDown, ErrConnectionLost,
// ErrQueueFull or ErrInactiveConnection.
func (k *Kernel) Ping(ctx context.Context, node notp.Node) error {
	l, err := k.target(node)
	if err != nil || l == nil {
		return err
	}
	tag, p, err := k.register(node)
	if err != nil {
		return err
	}
	if err := l.send(&wire.Envelope{Kind: wire.KindPing, Tag: tag}, modeDirect); err != nil {
		k.pending.del(tag, p)
		return err
	}
	_, err = k.wait(ctx, tag, p, "", node)
	return err
}

// lost ends a call stream whose connection closed or whose request was
// dropped: chunks already received stay readable, then Read returns err.
// Its waiter was already removed from the pending map.
func (r *streamReader) lost(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.wake()
}
