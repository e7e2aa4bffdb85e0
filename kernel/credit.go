package kernel

import (
	"context"
	"fmt"
	"sync"

	"github.com/notp-go/notp/internal/wire"
)

// Reply-stream flow control (see internal/wire's package doc): the sender
// of a multi-chunk reply spends one credit per chunk and starts with
// wire.StreamWindow; the caller grants more as it consumes chunks, so at
// most a window of chunks per stream is ever buffered at the caller and the
// caller's connection reader never blocks on a slow stream reader.

// creditKey names a reply stream on the replier's side: the calling node
// and its reply tag.
type creditKey struct{ node, tag string }

// credit is the send window of one reply stream being sent by ReplyStream.
type credit struct {
	mu       sync.Mutex
	n        int64
	canceled bool
	signal   chan struct{} // 1-buffered: credit arrived or the stream was canceled
}

// maxCredit caps a window so that a peer granting without end cannot
// overflow it.
const maxCredit = 1 << 30

// openCredit starts the window of a reply stream to tag on node.
func (k *Kernel) openCredit(node, tag string) *credit {
	c := &credit{n: wire.StreamWindow, signal: make(chan struct{}, 1)}
	k.cmu.Lock()
	k.credits[creditKey{node, tag}] = c
	k.cmu.Unlock()
	return c
}

func (k *Kernel) closeCredit(node, tag string, c *credit) {
	k.cmu.Lock()
	if k.credits[creditKey{node, tag}] == c {
		delete(k.credits, creditKey{node, tag})
	}
	k.cmu.Unlock()
}

// onCredit applies a KindCredit envelope from node: a grant or a cancel.
// Credit for streams this node is not sending is ignored.
func (k *Kernel) onCredit(node string, e *wire.Envelope) {
	var n uint32
	if e.Err == nil {
		var err error
		if n, err = wire.ParseCredit(e.Data); err != nil {
			k.log.Debug("bad credit", "peer", node, "err", err)
			return
		}
	}
	k.cmu.Lock()
	c := k.credits[creditKey{node, e.ID}]
	k.cmu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	if e.Err != nil {
		c.canceled = true
	} else {
		c.n = min(c.n+int64(n), maxCredit)
	}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// take spends one credit, waiting for a grant while there is none. It
// fails when the receiver canceled, ctx ends, the connection gone closes
// (nil for local streams) or the kernel closes.
func (c *credit) take(ctx context.Context, k *Kernel, gone <-chan struct{}) error {
	waited := false
	for {
		c.mu.Lock()
		canceled, ok := c.canceled, c.n > 0
		if ok && !canceled {
			c.n--
		}
		c.mu.Unlock()
		switch {
		case canceled:
			return ErrStreamCanceled
		case ok:
			return nil
		}
		if !waited {
			waited = true
			k.stats.creditWaits.Add(1)
		}
		select {
		case <-c.signal:
		case <-ctx.Done():
			return fmt.Errorf("kernel: reply stream: %w", ctx.Err())
		case <-gone:
			return fmt.Errorf("%w: reply stream's connection closed", ErrInactiveConnection)
		case <-k.done:
			return ErrClosed
		}
	}
}

// grantTo sends credit (n chunks, or a cancel) for tag to the replier:
// over via, the connection the chunks arrived on, or in-process when via
// is nil. It never blocks.
func (k *Kernel) grantTo(via *session, tag string, n uint32, cancel bool) {
	e := wire.Envelope{Kind: wire.KindCredit, ID: tag}
	if cancel {
		e.Err = &wire.Error{Code: codeCanceled, Message: "the caller stopped reading the stream"}
	} else {
		e.Data = wire.AppendCredit(make([]byte, 0, 4), n)
	}
	if via == nil {
		k.onCredit(k.selfID(), &e)
		return
	}
	via.send(&e, modeReply)
}

// codeCanceled is the code of a stream cancel on the wire.
const codeCanceled = "CANCELED"
