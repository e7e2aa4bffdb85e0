package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/notp-go/notp/internal/wire"
)

// The timer-driven paths of the kernel, run on a memNet inside a
// testing/synctest bubble: the fake clock jumps to the next timer as soon
// as every goroutine waits, so these tests check timeouts to the
// nanosecond, and take no real time.

// After a burst, a connection that stays idle for a whole janitor round
// gives back its large write buffers; one that wrote during the round
// keeps them; the connection works as before afterwards. The rounds are
// the janitor's own ticks.
func TestJanitorShrinksIdleBuffers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newMemNet().pair(t, nil)
		echo(t, b, "echo")
		gate := make(chan struct{})
		var gated sync.Once
		var got atomic.Int64
		b.Register("sink", HandlerFunc(func(Message) {
			gated.Do(func() { <-gate }) // b stops reading: a's casts pile up
			got.Add(1)
		}))
		var opened sync.Once
		open := func() { opened.Do(func() { close(gate) }) }
		t.Cleanup(open) // before the kernels' Close, which waits for b's reader
		payload := make([]byte, 1000)
		casts := int64(0)
		for queued(a, b) <= idleKeep { // a pipe buffers nothing: this is quick
			if casts == 1000 {
				t.Fatalf("%d casts to a peer that does not read left a's write buffer at %d bytes", casts, queued(a, b))
			}
			if err := a.Cast(b.Self(), "sink", payload); err != nil {
				t.Fatal(err)
			}
			casts++
		}
		open()
		synctest.Wait()
		if got.Load() != casts {
			t.Fatalf("%d of %d casts delivered", got.Load(), casts)
		}
		if n := bigBuffer(a, b); n <= idleKeep {
			t.Fatalf("the burst left no write buffer over %d bytes (largest %d)", idleKeep, n)
		}
		// The first tick sees the burst: busy this round, kept.
		time.Sleep(janitorInterval)
		synctest.Wait()
		if n := bigBuffer(a, b); n <= idleKeep {
			t.Fatalf("a session busy in the janitor's round was shrunk to %d", n)
		}
		// A call during the next round keeps the buffers another round.
		if _, err := a.Call(context.Background(), b.Self(), "echo", []byte("busy")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(janitorInterval)
		synctest.Wait()
		if n := bigBuffer(a, b); n <= idleKeep {
			t.Fatalf("a session that wrote this round was shrunk to %d", n)
		}
		// A whole round idle: shrunk, one tick and not a nanosecond before.
		time.Sleep(janitorInterval - 1)
		synctest.Wait()
		if n := bigBuffer(a, b); n <= idleKeep {
			t.Fatalf("shrunk to %d before the tick", n)
		}
		time.Sleep(1)
		synctest.Wait()
		if n := bigBuffer(a, b); n > idleKeep {
			t.Fatalf("an idle session kept %d bytes", n)
		}
		if got, err := a.Call(context.Background(), b.Self(), "echo", []byte("after")); err != nil || string(got) != "after" {
			t.Fatalf("call after shrinking = %q, %v", got, err)
		}
	})
}

// A partial incoming stream expires StreamTimeout after its last chunk:
// every chunk restarts the timer, and the caller is told CodeTimeout.
func TestStreamIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		k := newMemNet().start(t, func(c *Config) { c.StreamTimeout = timeout })
		echo(t, k, "echo")
		p, err := dialRaw(t, k, testCookie)
		if err != nil {
			t.Fatal(err)
		}
		chunk := func(data string) {
			t.Helper()
			e := &wire.Envelope{Kind: wire.KindMsg, ID: "echo", Tag: "t1", Stream: &wire.Stream{ID: "s1"}, Data: []byte(data)}
			if _, err := p.c.Write(p.record(frame(e))); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		replies := p.envelopes(1)
		chunk("one")
		for _, part := range []string{"two", "three", "four"} {
			time.Sleep(timeout - 1)
			chunk(part)
		}
		if n := k.Stats().StreamsAborted; n != 0 {
			t.Fatalf("a stream fed every %v was aborted (%d), its timeout is %v", timeout-1, n, timeout)
		}
		time.Sleep(timeout - 1)
		synctest.Wait()
		if n := k.Stats().StreamsAborted; n != 0 {
			t.Fatalf("stream aborted %v before its timeout", time.Duration(1))
		}
		time.Sleep(1)
		synctest.Wait()
		if n := k.Stats().StreamsAborted; n != 1 {
			t.Fatalf("Stats.StreamsAborted = %d at the timeout, want 1", n)
		}
		e := <-replies
		if e == nil || e.Kind != wire.KindReply || e.ID != "t1" || e.Err == nil || e.Err.Code != CodeTimeout {
			t.Fatalf("caller got %+v, want a %s error for t1", e, CodeTimeout)
		}
		// A chunk of the expired stream starts a new one rather than
		// completing the old: the done chunk alone is dropped.
		e = &wire.Envelope{Kind: wire.KindMsg, ID: "echo", Tag: "t1", Stream: &wire.Stream{ID: "s1", Done: true}, Data: []byte("end")}
		if _, err := p.c.Write(p.record(frame(e))); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case e := <-replies:
			t.Fatalf("the end of an expired stream was answered: %+v", e)
		default:
		}
		p.c.Close()
	})
}

// readEnvelope reads the next record from the kernel and returns its first
// envelope. It checks no MAC: the test trusts the kernel it talks to.
func (p *rawPeer) readEnvelope() (*wire.Envelope, error) {
	var h [wire.HeaderSize]byte
	if _, err := io.ReadFull(p.c, h[:]); err != nil {
		return nil, err
	}
	rec := make([]byte, binary.BigEndian.Uint32(h[:])+wire.MACSize)
	if _, err := io.ReadFull(p.c, rec); err != nil {
		return nil, err
	}
	var e wire.Envelope
	err := wire.SplitFrames(rec[:len(rec)-wire.MACSize], 1<<20, func(f []byte) error {
		if e.Kind != 0 {
			return nil
		}
		return wire.DecodeEnvelope(f, &e)
	})
	return &e, err
}

// envelopes reads envelopes from the kernel (readEnvelope) on a goroutine
// of its own into the returned channel of buffer n, closed when the
// connection fails or closes.
func (p *rawPeer) envelopes(n int) <-chan *wire.Envelope {
	out := make(chan *wire.Envelope, n)
	go func() {
		defer close(out)
		for {
			e, err := p.readEnvelope()
			if err != nil {
				return
			}
			out <- e
		}
	}()
	return out
}

// A link redials with a backoff that starts at ReconnectMin, doubles with
// full jitter (each wait in [backoff/2, backoff]) up to ReconnectMax, and
// starts over after a connection, whose loss is followed by a wait too
// (not an immediate redial, which a peer that accepts and drops
// connections would turn into a tight loop).
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 100 * time.Millisecond, 800 * time.Millisecond
		n := newMemNet()
		var mu sync.Mutex
		var dials []time.Time
		a := n.start(t, func(c *Config) {
			c.ReconnectMin, c.ReconnectMax = lo, hi
			c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				dials = append(dials, time.Now())
				mu.Unlock()
				return n.dial(ctx, network, addr)
			}
		})
		b := n.config(t, nil) // not started: its address refuses
		if err := a.Connect(b.Node); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mu.Lock()
		gaps := gapsOf(dials)
		mu.Unlock()
		if len(gaps) < 10 {
			t.Fatalf("%d dials in 10 s", len(gaps)+1)
		}
		backoff := lo
		for i, g := range gaps {
			if g < backoff/2 || g > backoff {
				t.Fatalf("wait %d = %v, want within [%v, %v] (all: %v)", i, g, backoff/2, backoff, gaps)
			}
			backoff = min(2*backoff, hi)
		}
		// The node comes up: the next dial connects, and once that
		// connection is gone the backoff starts again from lo.
		kb, err := New(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := kb.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitConnected(context.Background(), b.Node.ID); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		dials = dials[:0]
		mu.Unlock()
		kb.Close()
		closed := time.Now()
		time.Sleep(3 * lo) // the first wait (≤ lo) and the second (≤ 2 lo)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(dials) < 2 || dials[0].Sub(closed) < lo/2 || dials[0].Sub(closed) > lo || dials[1].Sub(dials[0]) > 2*lo {
			t.Fatalf("after a connection the backoff did not start over from %v: closed at %v, dials at %v", lo, closed, dials)
		}
	})
}

// gapsOf returns the intervals between consecutive times.
func gapsOf(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// Config.CallTimeout bounds a Call whose ctx has no deadline: it fails at
// CallTimeout exactly, with context.DeadlineExceeded, and a reply after it
// is counted as late while one a nanosecond before it is the result. The
// pooled waiters' timers leave no stale expiry behind for later calls. A
// ctx deadline wins over CallTimeout, and a negative CallTimeout leaves the
// call to its ctx.
func TestCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 5 * time.Second
		n := newMemNet()
		a, b := n.pair(t, func(c *Config) { c.CallTimeout = timeout })
		echo(t, b, "echo")
		held := hang(t, b, "silent")
		bg := context.Background()
		call := func(k *Kernel, ctx context.Context) (time.Duration, error) {
			start := time.Now()
			_, err := k.Call(ctx, b.Self(), "silent", nil)
			return time.Since(start), err
		}
		took, err := call(a, bg)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "silent") || took != timeout {
			t.Fatalf("call to a silent handler: %v after %v, want DeadlineExceeded after %v", err, took, timeout)
		}
		b.Reply((<-held).From, []byte("too late"))
		synctest.Wait()
		if n := a.Stats().LateReplies; n != 1 {
			t.Fatalf("Stats.LateReplies = %d, want 1", n)
		}
		// A reply a nanosecond before the timeout is the result.
		done := make(chan error, 1)
		go func() { _, err := call(a, bg); done <- err }()
		m := <-held
		time.Sleep(timeout - 1)
		b.Reply(m.From, []byte("just in time"))
		if err := <-done; err != nil {
			t.Fatalf("reply %v after the call: %v", timeout-1, err)
		}
		// Calls reuse the waiters (and their timers) of earlier ones,
		// each a second apart so that old timers would have fired; none
		// may see an old expiry.
		for i := range 20 {
			time.Sleep(time.Second)
			if got, err := a.Call(bg, b.Self(), "echo", []byte{byte(i)}); err != nil || len(got) != 1 || got[0] != byte(i) {
				t.Fatalf("call %d = %v, %v", i, got, err)
			}
			if err := a.Ping(bg, b.Self()); err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
		}
		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		if took, err = call(a, ctx); !errors.Is(err, context.DeadlineExceeded) || took != time.Second {
			t.Fatalf("call with a 1 s ctx: %v after %v", err, took)
		}
		<-held
		c := n.start(t, func(c *Config) { c.CallTimeout = -1 })
		if err := c.Connect(b.Self()); err != nil {
			t.Fatal(err)
		}
		cctx, ccancel := context.WithCancel(bg)
		go func() {
			<-held
			time.Sleep(time.Hour) // far past any default timeout
			ccancel()
		}()
		if took, err = call(c, cctx); !errors.Is(err, context.Canceled) || took != time.Hour {
			t.Fatalf("call with CallTimeout < 0: %v after %v, want the ctx's Canceled after an hour", err, took)
		}
	})
}

// A link whose last dial failed waits out its backoff before the next one,
// and calls fail with ErrNodeDown meanwhile. When the node is seen alive
// (it dials in, or the membership layer says so), the link redials at once
// instead of after up to ReconnectMax.
func TestSeenAliveCutsBackoffShort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alive func(t *testing.T, a, b *Kernel)
	}{
		{"inbound connection", func(t *testing.T, a, b *Kernel) {
			if err := b.Connect(a.Self()); err != nil {
				t.Fatal(err)
			}
		}},
		{"membership", func(_ *testing.T, a, b *Kernel) { a.SetNodeDown(b.Self().ID, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newMemNet()
				a := n.start(t, func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Hour, time.Hour })
				down := n.config(t, nil) // not started: its address refuses
				node := down.Node
				if err := a.Connect(node); err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // the first dial failed; the link waits an hour
				if _, err := a.Call(context.Background(), node, "echo", nil); !errors.Is(err, ErrNodeDown) {
					t.Fatalf("call during the backoff = %v, want ErrNodeDown", err)
				}
				time.Sleep(time.Minute)
				b := n.start(t, func(c *Config) { c.Node = node }) // up at the same address
				echo(t, b, "echo")
				dials := n.dialsTo(node)
				start := time.Now()
				tc.alive(t, a, b)
				if err := a.WaitConnected(context.Background(), node.ID); err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took != 0 {
					t.Fatalf("the link came up %v after the node was seen alive, want at once", took)
				}
				if n.dialsTo(node) != dials+1 {
					t.Fatalf("%d dials to the node once seen alive, want 1", n.dialsTo(node)-dials)
				}
				if _, err := a.Call(context.Background(), node, "echo", nil); err != nil {
					t.Fatalf("call after the redial: %v", err)
				}
			})
		})
	}
}

// A connection may have at most maxStreamsPerConn partial incoming streams:
// the next one is aborted with CodeBufferLimit, and finishing a stream
// makes room for a new one.
func TestStreamsPerConnectionLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newMemNet().start(t, nil)
		echo(t, k, "echo")
		p, err := dialRaw(t, k, testCookie)
		if err != nil {
			t.Fatal(err)
		}
		replies := p.envelopes(4)
		chunk := func(i int, done bool) []byte {
			id := fmt.Sprint(i)
			return frame(&wire.Envelope{Kind: wire.KindMsg, ID: "echo", Tag: "t" + id, Stream: &wire.Stream{ID: "s" + id, Done: done}, Data: []byte(id)})
		}
		send := func(frames []byte) {
			t.Helper()
			if _, err := p.c.Write(p.record(frames)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		var batch []byte
		for i := range maxStreamsPerConn {
			batch = append(batch, chunk(i, false)...)
			if len(batch) > 4<<10 {
				send(batch)
				batch = nil
			}
		}
		send(batch)
		if n := k.Stats().StreamsAborted; n != 0 {
			t.Fatalf("%d of %d streams aborted", n, maxStreamsPerConn)
		}
		send(chunk(maxStreamsPerConn, false))
		e := <-replies
		if k.Stats().StreamsAborted != 1 || e.ID != fmt.Sprint("t", maxStreamsPerConn) || e.Err == nil || e.Err.Code != CodeBufferLimit {
			t.Fatalf("stream over the limit: reply %+v, %d aborted; want %s for it", e, k.Stats().StreamsAborted, CodeBufferLimit)
		}
		send(chunk(0, true)) // stream 0 ends and is delivered
		if e := <-replies; e.ID != "t0" || e.Err != nil || string(e.Data) != "00" {
			t.Fatalf("finished stream: reply %+v, want t0 with data 00", e)
		}
		send(chunk(maxStreamsPerConn+1, false)) // fits again
		if n := k.Stats().StreamsAborted; n != 1 {
			t.Fatalf("a stream opened after one finished was aborted (%d aborts)", n)
		}
		p.c.Close()
	})
}

// A reader that stopped because handlers hold more than MaxPeerBytes of
// its peer's messages waits for them to be released, and gives up (closing
// the connection, counted in BudgetCloses) 2×WriteTimeout after it
// stopped, to the nanosecond, when they are not.
func TestBudgetWaitGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget, wt, size = 1 << 20, 5 * time.Second, 64 << 10
		cfg := func(c *Config) { c.MaxPeerBytes, c.MaxStreamSize, c.WriteTimeout = budget, budget, wt }
		a, b := newMemNet().pair(t, cfg)
		var mu sync.Mutex
		var releases []func()
		b.Register("queue", HandlerFunc(func(m Message) {
			mu.Lock()
			releases = append(releases, m.Hold())
			mu.Unlock()
		}))
		// Cast one at a time, each read before the next, until the
		// reader stops: nothing is left unwritten at a, so no write
		// timeout can end the wait for it.
		fill := func() {
			t.Helper()
			pauses := b.Stats().BudgetPauses
			for i := 0; b.Stats().BudgetPauses == pauses; i++ {
				if i > budget/size+1 {
					t.Fatalf("%d casts held and the reader has not stopped", i)
				}
				if err := a.Cast(b.Self(), "queue", make([]byte, size)); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
			}
		}
		fill()
		time.Sleep(2*wt - 1)
		synctest.Wait()
		if n := b.Stats().BudgetCloses; n != 0 {
			t.Fatalf("BudgetCloses = %d before the wait's limit", n)
		}
		mu.Lock()
		for _, r := range releases {
			r()
		}
		releases = nil
		mu.Unlock()
		synctest.Wait()
		if h := b.Stats().HeldBytes; h != 0 || !a.Connected(b.Self().ID) {
			t.Fatalf("after the release: HeldBytes %d, connected %v", h, a.Connected(b.Self().ID))
		}
		// Stopped again, and nothing released: closed at the limit.
		fill()
		time.Sleep(2*wt - 1)
		synctest.Wait()
		if n := b.Stats().BudgetCloses; n != 0 {
			t.Fatalf("BudgetCloses = %d a nanosecond before the limit", n)
		}
		time.Sleep(1)
		synctest.Wait()
		if n := b.Stats().BudgetCloses; n != 1 {
			t.Fatalf("BudgetCloses = %d at the limit, want 1", n)
		}
		mu.Lock()
		for _, r := range releases {
			r()
		}
		mu.Unlock()
	})
}
