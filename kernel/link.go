package kernel

import (
	"context"
	"fmt"
	"math/rand/v2"
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

	mu       sync.Mutex
	sess     *session // nil while connecting
	everUp   bool     // a session was attached at least once
	lastErr  error    // the last failed connection attempt, nil once up
	failures uint64   // failed connection attempts so far
	queue    [][]byte // encoded frames sent while connecting, FIFO
	stopped  bool
	stopCh   chan struct{}
	exited   chan struct{}
	changed  chan struct{} // closed and replaced when sess or queue empties
}

func newLink(k *Kernel, n notp.Node) *link {
	return &link{k: k, node: n, stopCh: make(chan struct{}), exited: make(chan struct{}), changed: make(chan struct{})}
}

func (l *link) active() bool { return l.session() != nil }

func (l *link) session() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess
}

// send writes e on the session, or queues it while connecting.
func (l *link) send(e *wire.Envelope, m sendMode) error {
	for {
		l.mu.Lock()
		if l.stopped {
			l.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrInactiveConnection, l.node.ID)
		}
		s := l.sess
		if s == nil {
			l.enqueue(wire.AppendFrame(nil, e))
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if err := s.send(e, m); err != errSessionClosed {
			return err
		}
		l.mu.Lock()
		if l.sess == s {
			l.sess = nil
		}
		l.mu.Unlock()
	}
}

// enqueue appends a frame, dropping the oldest when full. l.mu held.
func (l *link) enqueue(f []byte) {
	if len(l.queue) >= l.k.cfg.QueueLen {
		n := len(l.queue) - l.k.cfg.QueueLen + 1
		clear(l.queue[:n])
		l.queue = l.queue[n:]
		l.k.stats.queueDrops.Add(uint64(n))
	}
	l.queue = append(l.queue, f)
}

// run dials and redials until stopped.
func (l *link) run() {
	defer l.k.wg.Done()
	defer close(l.exited)
	backoff := l.k.cfg.ReconnectMin
	first := true
	for {
		s, err := l.dial()
		if err == nil {
			l.k.log.Info("peer connected", "peer", l.node.ID, "dir", "out")
			if !first {
				l.k.stats.reconnects.Add(1)
			}
			first = false
			backoff = l.k.cfg.ReconnectMin
			l.attach(s)
			s.readLoop()
			l.detach(s)
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
		}
		backoff = min(2*backoff, l.k.cfg.ReconnectMax)
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
	for _, f := range l.queue {
		s.sendRaw(f)
	}
	clear(l.queue)
	l.queue = l.queue[:0]
	l.sess = s
	l.everUp = true
	l.lastErr = nil
	l.notify()
}

func (l *link) detach(s *session) {
	s.close(nil)
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
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

// stop stops the link (dropping its queue) and waits for its goroutine.
func (l *link) stop(force bool) {
	l.mu.Lock()
	if !l.stopped {
		l.stopped = true
		close(l.stopCh)
		clear(l.queue)
		l.queue = nil
	}
	s := l.sess
	l.mu.Unlock()
	if s != nil {
		s.close(nil)
	}
	<-l.exited
}
