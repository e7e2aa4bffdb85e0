package kernel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// link is the outbound connection to one peer (notp's Connection): it
// dials, authenticates, reconnects with backoff and queues messages while
// no session is up.
type link struct {
	k        *Kernel
	node     notp.Node
	inflight atomic.Int64 // calls on this link waiting for a reply
	down     atomic.Bool  // the membership layer reports the node down (SetNodeDown)

	mu       sync.Mutex
	sess     *session      // nil while connecting
	everUp   bool          // a session was attached at least once
	lastErr  error         // the last failed connection attempt, nil once up
	failures uint64        // failed connection attempts so far
	queue    []queuedFrame // frames sent while connecting, FIFO
	stopped  bool
	stopCh   chan struct{}
	runs     sync.WaitGroup // run goroutines: one, two while a retired session drains
	retired  []*session     // sessions moved off by retire, still draining
	changed  chan struct{}  // closed and replaced when sess or queue empties
	redial   chan struct{}  // cuts short the backoff after a failed dial (cap 1)
}

// queuedFrame is a frame sent while the link was connecting. tag is the reply
// tag of the call it belongs to ("" for casts): the call is bound to the
// session the frame finally goes out on, or failed if the frame is dropped.
type queuedFrame struct {
	frame []byte
	tag   string
}

// newLink returns a link to n. k.mu held.
func newLink(k *Kernel, n notp.Node) *link {
	l := &link{k: k, node: n, stopCh: make(chan struct{}),
		changed: make(chan struct{}), redial: make(chan struct{}, 1)}
	l.runs.Add(1)
	return l
}

// SetNodeDown records what the membership layer knows of node id's
// health on the kernel's link to it: while the link is marked down,
// calls, pings and call streams to id fail at once with an error wrapping
// ErrNodeDown instead of waiting for their deadline (casts are still
// queued or sent: they wait for nothing, and a node that comes back gets
// them). The mark is cleared by SetNodeDown(id, false) and by any
// successful connection with the node, outbound or inbound. It belongs to
// the link: a node without a link has nothing to mark, and a link made
// later (Connect, or a node that moved) starts unmarked, so its first
// connection attempt is queued for like any other; a mark kept by id
// would outlive the incarnation it was about. Package gossip calls it
// from its memberlist event handler (dead or left: down; alive: up); it
// never blocks on the network and may be called from any goroutine.
func (k *Kernel) SetNodeDown(id string, down bool) {
	k.mu.Lock()
	l := k.links[id]
	k.mu.Unlock()
	if l == nil {
		return
	}
	if was := l.down.Swap(down); was != down {
		k.log.Debug("node health from membership", "peer", id, "down", down)
	}
	if !down {
		l.wake()
	}
}

func (l *link) active() bool { return l.session() != nil }

func (l *link) session() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess
}

// send writes e on the session, or queues it while connecting. A request
// with a reply tag (a call, ping or call stream chunk, whose waiter is
// registered under e.Tag) is bound to the session it is written on, so
// the session's close fails it with ErrConnectionLost; it is refused with
// ErrNodeDown when the node is known to be down (see downErr).
func (l *link) send(e *wire.Envelope, m sendMode) error {
	tag := e.Tag
	for {
		l.mu.Lock()
		if l.stopped {
			l.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrInactiveConnection, l.node.ID)
		}
		s := l.sess
		if tag != "" {
			if err := l.downErr(s); err != nil {
				l.mu.Unlock()
				l.k.stats.callsNodeDown.Add(1)
				return err
			}
		}
		if s == nil {
			dropped := l.enqueue(queuedFrame{frame: wire.AppendFrame(nil, e), tag: tag})
			l.mu.Unlock()
			l.k.failDropped(l.node.ID, dropped)
			return nil
		}
		l.mu.Unlock()
		if tag != "" {
			l.k.pending.bind(tag, s)
		}
		if err := s.send(e, m); err != errSessionClosed {
			return err
		}
		if tag != "" && !l.k.pending.unbind(tag, s) {
			return nil // s's close already failed the call
		}
		l.mu.Lock()
		if l.sess == s {
			l.sess = nil
		}
		l.mu.Unlock()
	}
}

// downErr returns an error wrapping ErrNodeDown when a request to the
// node should fail at once: the membership layer reports the node down,
// or there is no session and the last connection attempt failed. A first
// connection attempt still in progress, or a redial after a session
// closed, is not a failure: requests are queued for it. l.mu held.
func (l *link) downErr(s *session) error {
	if l.down.Load() {
		return fmt.Errorf("%w: %s: the membership layer reports it down", ErrNodeDown, l.node.ID)
	}
	if s == nil && l.lastErr != nil {
		return fmt.Errorf("%w: %w", ErrNodeDown, &LinkError{Node: l.node, Err: l.lastErr})
	}
	return nil
}

// enqueue appends a frame, dropping the oldest when full, and returns the
// reply tags of the calls whose frames were dropped (fail them with
// failDropped once l.mu is released). l.mu held.
func (l *link) enqueue(q queuedFrame) []string {
	var dropped []string
	if len(l.queue) >= l.k.cfg.QueueLen {
		n := len(l.queue) - l.k.cfg.QueueLen + 1
		for _, d := range l.queue[:n] {
			if d.tag != "" {
				dropped = append(dropped, d.tag)
			}
		}
		clear(l.queue[:n])
		l.queue = l.queue[n:]
		l.k.stats.queueDrops.Add(uint64(n))
	}
	l.queue = append(l.queue, q)
	return dropped
}

// failDropped fails the calls whose requests a full reconnect queue
// dropped with ErrQueueFull, at once rather than at their deadline.
func (k *Kernel) failDropped(id string, tags []string) {
	for _, tag := range tags {
		if k.failTag(tag, fmt.Errorf("%w: request to %s dropped", ErrQueueFull, id)) {
			k.stats.callsQueueFull.Add(1)
		}
	}
}

// run dials and redials until stopped, or until its session is retired
// (see retire, which starts the next run).
func (l *link) run() {
	defer l.k.wg.Done()
	defer l.runs.Done()
	backoff := l.k.cfg.ReconnectMin
	first := true
	for {
		s, err := l.dial()
		if err == nil {
			l.k.log.Info("peer connected", "peer", l.node.ID, "dir", "out")
			l.k.SetNodeDown(l.node.ID, false)
			if !first {
				l.k.stats.reconnects.Add(1)
			}
			first = false
			backoff = l.k.cfg.ReconnectMin
			l.attach(s)
			s.readLoop()
			l.detach(s)
			if s.retired.Load() {
				return
			}
		} else {
			l.k.log.Debug("dial failed", "peer", l.node.ID, "err", err)
			l.failed(err)
		}
		// Full jitter in [backoff/2, backoff).
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-l.stopCh:
			t.Stop()
			return
		case <-t.C:
			backoff = min(2*backoff, l.k.cfg.ReconnectMax)
		case <-l.redial:
			t.Stop()
			backoff = l.k.cfg.ReconnectMin
		}
	}
}

// wake cuts short the backoff of a link whose last dial failed: the node
// was just seen alive (an inbound connection from it, or the membership
// layer), so calls, which fail with ErrNodeDown while the last dial
// stands failed, need not wait up to ReconnectMax for the next attempt.
// A link that is connected or dialing ignores it.
func (l *link) wake() {
	l.mu.Lock()
	failed := l.sess == nil && l.lastErr != nil
	l.mu.Unlock()
	if failed {
		select {
		case l.redial <- struct{}{}:
		default:
		}
	}
}

func (l *link) dial() (*session, error) {
	select {
	case <-l.stopCh:
		return nil, ErrInactiveConnection
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.k.cfg.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(closingCtx{l.k}, cancel)
	defer stop()
	stopL := l.onStop(cancel)
	defer stopL()
	c, err := l.k.Dial(ctx, l.node.Addr(), ProtoKernel)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	unwatch := context.AfterFunc(ctx, func() { c.Close() })
	s, err := l.k.handshake(c, true, dl)
	if !unwatch() || err != nil {
		c.Close()
		if err == nil {
			err = ctx.Err()
		}
		l.k.stats.handshake.Add(1)
		l.k.warn("outbound handshake failed", "peer", l.node.ID, "err", err)
		return nil, err
	}
	if s.peer.ID != l.node.ID {
		c.Close()
		l.k.stats.handshake.Add(1)
		return nil, fmt.Errorf("kernel: dialed %s but %s answered", l.node.ID, s.peer.ID)
	}
	if !l.k.addSession(s) {
		c.Close()
		return nil, ErrClosed
	}
	return s, nil
}

// onStop runs f when the link stops; the returned func unregisters it.
func (l *link) onStop(f func()) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-l.stopCh:
			f()
		case <-done:
		}
	}()
	return func() { close(done); wg.Wait() }
}

// attach makes s the link's session after flushing the queue into it, so
// queued messages go out before any new send.
func (l *link) attach(s *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		s.close(nil)
		return
	}
	var bound []string
	for _, q := range l.queue {
		if q.tag != "" {
			if !l.k.pending.bind(q.tag, s) {
				continue // nobody waits for this call any more
			}
			bound = append(bound, q.tag)
		}
		s.sendRaw(q.frame)
	}
	clear(l.queue)
	l.queue = l.queue[:0]
	l.sess = s
	l.everUp = true
	l.lastErr = nil
	// A wake is for a link waiting out a failed dial's backoff. One
	// left from before this session (the dial's own success marks the
	// node alive while lastErr still stands) would make the redial after
	// this session ends immediate: a peer that accepts and drops
	// connections would be redialled in a tight loop.
	select {
	case <-l.redial:
	default:
	}
	l.notify()
	if s.isClosed() {
		// s closed while the queue went in (sendRaw drops frames then):
		// its close may have run before the calls were bound to it.
		for _, tag := range bound {
			if l.k.failTag(tag, connLost(s, nil)) {
				l.k.stats.callsLost.Add(1)
			}
		}
	}
}

func (l *link) detach(s *session) {
	s.close(nil)
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
	}
	if i := slices.Index(l.retired, s); i >= 0 {
		l.retired = slices.Delete(l.retired, i, i+1)
	}
	l.notify()
	l.mu.Unlock()
}

// failed records a failed connection attempt and wakes waiters.
func (l *link) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.lastErr = err
	l.failures++
	l.notify()
}

// notify wakes drain and WaitConnected waiters. l.mu held.
func (l *link) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// drain waits until the queue is empty and the session has written
// everything, or ctx ends.
func (l *link) drain(ctx context.Context) error {
	for {
		l.mu.Lock()
		s, q, ch, everUp := l.sess, len(l.queue), l.changed, l.everUp
		l.mu.Unlock()
		if q == 0 && s != nil && s.idle() {
			return nil
		}
		if s == nil && !everUp {
			// Never connected: there is nobody to deliver the queue to,
			// so waiting would only hold the caller for the whole ctx.
			return nil
		}
		if s != nil && q == 0 {
			// Wait for the writer: poll its idleness on its condition.
			if waitIdle(ctx, s) {
				continue
			}
		} else {
			select {
			case <-ch:
				continue
			case <-ctx.Done():
			case <-l.k.done:
				return ErrClosed
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kernel: disconnect %s: %w", l.node.ID, ctx.Err())
		}
	}
}

// waitIdle waits until s has written everything; false if ctx ended.
func waitIdle(ctx context.Context, s *session) bool {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && (len(s.buf) > 0 || s.flushing) {
		if ctx.Err() != nil {
			return false
		}
		s.cond.Wait()
	}
	return true
}

// stop stops the link (dropping its queue: the calls queued in it fail
// with ErrInactiveConnection) and waits for its goroutine.
func (l *link) stop(force bool) {
	var dropped []string
	l.mu.Lock()
	if !l.stopped {
		l.stopped = true
		close(l.stopCh)
		for _, q := range l.queue {
			if q.tag != "" {
				dropped = append(dropped, q.tag)
			}
		}
		clear(l.queue)
		l.queue = nil
	}
	sessions := append([]*session{l.sess}, l.retired...)
	l.mu.Unlock()
	for _, tag := range dropped {
		l.k.failTag(tag, fmt.Errorf("%w: %s", ErrInactiveConnection, l.node.ID))
	}
	for _, s := range sessions {
		if s != nil {
			s.close(nil)
		}
	}
	l.runs.Wait()
}

// retire moves the link off s, whose key was removed from the keyring,
// without failing the calls on it: new messages are queued for a new
// connection, which a second run goroutine dials at once (proving with
// the primary key), while s closes once its calls are answered (see
// Kernel.retireSession). It reports false when s is not the link's
// session.
func (l *link) retire(s *session) bool {
	if !l.k.track() { // for the new run goroutine
		return false
	}
	l.mu.Lock()
	if l.stopped || l.sess != s {
		l.mu.Unlock()
		l.k.wg.Done()
		return false
	}
	l.sess = nil
	s.retired.Store(true)
	l.retired = append(l.retired, s)
	l.runs.Add(1)
	l.notify()
	l.mu.Unlock()
	go l.run()
	l.k.retireSession(s)
	return true
}

// Identify dials the kernel at addr (host:port), runs the hello (proving
// this node's primary key and checking the peer's proof, so the answer is
// authenticated) and returns the node that answered, then closes the
// connection. It lets a node that only knows a seed's address (a DNS
// name, see package discover) learn the seed's id to meet it. It ends
// with ctx or after Config.HandshakeTimeout, whichever is first. It fails
// with ErrNotStarted before Start and ErrClosed after Close.
func (k *Kernel) Identify(ctx context.Context, addr string) (notp.Node, error) {
	k.mu.Lock()
	err := k.openLocked()
	k.mu.Unlock()
	if err != nil {
		return notp.Node{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, k.cfg.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(closingCtx{k}, cancel)
	defer stop()
	c, err := k.Dial(ctx, addr, ProtoKernel)
	if err != nil {
		return notp.Node{}, err
	}
	defer c.Close()
	unwatch := context.AfterFunc(ctx, func() { c.Close() })
	defer unwatch()
	dl, _ := ctx.Deadline()
	s, err := k.handshake(c, true, dl)
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return notp.Node{}, fmt.Errorf("kernel: identify %s: %w", addr, err)
	}
	return s.peer, nil
}
