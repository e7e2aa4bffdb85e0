package kernel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
)

// failFastBound is how soon a call that fails fast must fail: far below
// the 5 s deadline the tests give it, so waiting for the deadline fails.
const failFastBound = 2 * time.Second

// deadlineCtx returns a ctx ending after d, cancelled at cleanup.
func deadlineCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// hang registers name on k as a handler that never replies and reports
// each message it gets on the returned channel.
func hang(t *testing.T, k *Kernel, name string) <-chan Message {
	got := make(chan Message, 16)
	if err := k.Register(name, HandlerFunc(func(m Message) { got <- m })); err != nil {
		t.Fatal(err)
	}
	return got
}

// silentPeer listens on loopback and accepts connections that never
// answer, so a link's connection attempt to it stays in progress. It
// returns the node to connect to.
func silentPeer(t *testing.T) notp.Node {
	s := testutil.NewSilentServer(t)
	return notp.Node{ID: "silent", Host: "127.0.0.1", Port: s.Addr().(*net.TCPAddr).Port}
}

// queueLen returns how many frames a's link to id holds for its next
// connection.
func queueLen(a *Kernel, id string) int {
	l := a.link(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// A call whose request went out on a connection that then closes fails at
// once with ErrConnectionLost: its reply could only have come back over
// that connection.
func TestCallFailsWhenConnectionLost(t *testing.T) {
	a, b := pair(t, false, nil)
	got := hang(t, b, "hang")
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(deadlineCtx(t, 5*time.Second), b.Self(), "hang", []byte("x"))
		errc <- err
	}()
	<-got // the request was written and handled: only the reply is missing
	start := time.Now()
	b.Close()
	err := <-errc
	took := time.Since(start)
	if !errors.Is(err, ErrConnectionLost) || took > failFastBound {
		t.Fatalf("call = %v after %v, want ErrConnectionLost at once", err, took)
	}
	t.Logf("call failed %v after the peer closed: %v", took, err)
	waitFor(t, "Stats.CallsLost 1", func() bool { return a.Stats().CallsLost == 1 })
}

// A call stream whose connection closes ends with ErrConnectionLost, after
// the chunks that did arrive.
func TestCallStreamFailsWhenConnectionLost(t *testing.T) {
	a, b := pair(t, false, nil)
	got := hang(t, b, "hang")
	r, err := a.CallStream(deadlineCtx(t, 5*time.Second), b.Self(), "hang", bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	<-got
	start := time.Now()
	b.Close()
	_, err = io.ReadAll(r)
	took := time.Since(start)
	if !errors.Is(err, ErrConnectionLost) || took > failFastBound {
		t.Fatalf("stream read = %v after %v, want ErrConnectionLost at once", err, took)
	}
	t.Logf("call stream failed %v after the peer closed", took)
}

// A call queued while the link reconnects (after a session closed, with no
// failed attempt since) is not failed: it goes out on the next connection.
func TestQueuedCallWaitsForReconnect(t *testing.T) {
	a, b := pair(t, false, func(c *Config) { c.ReconnectMin = 300 * time.Millisecond })
	echo(t, b, "echo")
	s := a.sessionTo(b.Self().ID)
	s.close(nil)
	waitFor(t, "link down", func() bool { return !a.Connected(b.Self().ID) })
	got, err := a.Call(deadlineCtx(t, 5*time.Second), b.Self(), "echo", []byte("later"))
	if err != nil || string(got) != "later" {
		t.Fatalf("call during reconnect = %q, %v", got, err)
	}
	if n := a.Stats().Reconnects; n != 1 {
		t.Fatalf("Stats.Reconnects = %d, want 1", n)
	}
}

// Calls and pings to a peer whose last connection attempt failed fail at
// once with ErrNodeDown (wrapping the attempt's *LinkError), not at their
// deadline; casts are still queued for its return.
func TestCallToDownNodeFailsFast(t *testing.T) {
	a, b := pair(t, false, nil)
	id := b.Self().ID
	b.Close()
	waitFor(t, "a failed redial", func() bool {
		var le *LinkError
		return errors.As(a.WaitConnected(deadlineCtx(t, 5*time.Second), id), &le)
	})
	start := time.Now()
	_, err := a.Call(deadlineCtx(t, 5*time.Second), b.Self(), "echo", nil)
	took := time.Since(start)
	var le *LinkError
	if !errors.Is(err, ErrNodeDown) || !errors.As(err, &le) || le.Node.ID != id || took > failFastBound {
		t.Fatalf("call = %v after %v, want ErrNodeDown with the dial error", err, took)
	}
	t.Logf("call to a down node failed after %v: %v", took, err)
	start = time.Now()
	err = a.Ping(deadlineCtx(t, 5*time.Second), b.Self())
	if took := time.Since(start); !errors.Is(err, ErrNodeDown) || took > failFastBound {
		t.Fatalf("ping = %v after %v, want ErrNodeDown", err, took)
	}
	if _, err := a.CallStream(deadlineCtx(t, 5*time.Second), b.Self(), "echo", nil); !errors.Is(err, ErrNodeDown) {
		t.Fatalf("call stream = %v, want ErrNodeDown", err)
	}
	if err := a.Cast(b.Self(), "echo", nil); err != nil {
		t.Fatalf("cast to a down node = %v, want it queued", err)
	}
	if n := queueLen(a, id); n != 1 {
		t.Fatalf("queue holds %d frames, want the cast", n)
	}
	if n := a.Stats().CallsNodeDown; n != 3 {
		t.Fatalf("Stats.CallsNodeDown = %d, want 3", n)
	}
}

// A first connection attempt still in progress is not a failure: calls
// are queued for it and wait (here until their deadline).
func TestFirstConnectQueuesCalls(t *testing.T) {
	a := startKernel(t, func(c *Config) { c.HandshakeTimeout = time.Minute })
	n := silentPeer(t)
	if err := a.Connect(n); err != nil {
		t.Fatal(err)
	}
	_, err := a.Call(deadlineCtx(t, 200*time.Millisecond), n, "x", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call during the first connect = %v, want its deadline", err)
	}
}

// The membership layer's down mark fails calls at once even while a
// connection is up (it may be half open); clearing it, or a new
// connection, lifts it.
func TestSetNodeDown(t *testing.T) {
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	a.SetNodeDown(b.Self().ID, true)
	start := time.Now()
	_, err := a.Call(deadlineCtx(t, 5*time.Second), b.Self(), "echo", nil)
	if took := time.Since(start); !errors.Is(err, ErrNodeDown) || took > failFastBound {
		t.Fatalf("call to a node marked down = %v after %v", err, took)
	}
	a.SetNodeDown(b.Self().ID, false)
	if _, err := a.Call(ctxT(t), b.Self(), "echo", nil); err != nil {
		t.Fatalf("call after the mark was cleared: %v", err)
	}
	// A mark belongs to the link: one set before the link exists (about
	// an earlier incarnation of the node, say) does not keep the new
	// link's first connection from being tried.
	c := startKernel(t, nil)
	echo(t, c, "echo")
	a.SetNodeDown(c.Self().ID, true)
	if err := a.Connect(c.Self()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(ctxT(t), c.Self(), "echo", nil); err != nil {
		t.Fatalf("call on a link made after a mark: %v", err)
	}
	// A successful outbound connection clears a mark.
	a.SetNodeDown(c.Self().ID, true)
	s := a.sessionTo(c.Self().ID)
	if s == nil {
		t.Fatal("no session to c")
	}
	s.close(nil) // the link redials
	waitFor(t, "the mark cleared by a's redial", func() bool {
		_, err := a.Call(ctxT(t), c.Self(), "echo", nil)
		return err == nil
	})
	// An inbound connection from the node clears the mark as well.
	a.SetNodeDown(b.Self().ID, true)
	connect(t, b, a)
	waitFor(t, "the mark cleared by b's connection", func() bool {
		_, err := a.Call(ctxT(t), b.Self(), "echo", nil)
		return err == nil
	})
}

// Calls whose requests a full reconnect queue drops fail at once with
// ErrQueueFull instead of waiting for their deadline.
func TestQueueFullFailsDroppedCalls(t *testing.T) {
	a := startKernel(t, func(c *Config) { c.QueueLen, c.HandshakeTimeout = 2, time.Minute })
	n := silentPeer(t)
	if err := a.Connect(n); err != nil {
		t.Fatal(err)
	}
	errs := make([]chan error, 3)
	var start time.Time
	for i := range errs {
		errs[i] = make(chan error, 1)
		start = time.Now()
		go func() {
			_, err := a.Call(deadlineCtx(t, 5*time.Second), n, "x", []byte(strconv.Itoa(i)))
			errs[i] <- err
		}()
		want := min(i+1, 2)
		waitFor(t, "call queued", func() bool { return queueLen(a, n.ID) == want && a.Stats().QueueDrops == uint64(i+1-want) })
	}
	// The third call pushed the first out of the queue.
	err := <-errs[0]
	took := time.Since(start)
	if !errors.Is(err, ErrQueueFull) || took > failFastBound {
		t.Fatalf("dropped call = %v %v after the third call, want ErrQueueFull at once", err, took)
	}
	t.Logf("a call dropped from the reconnect queue failed within %v of the call that overflowed it", took)
	waitFor(t, "Stats.CallsQueueFull 1", func() bool { return a.Stats().CallsQueueFull == 1 })
	for _, ch := range errs[1:] {
		select {
		case err := <-ch:
			t.Fatalf("a call still queued ended: %v", err)
		default:
		}
	}
}

// A handler panicking on a remote message closes that connection (its
// state may be inconsistent), is logged and counted, and does not kill
// the process: the caller gets an error at once and the link reconnects.
func TestHandlerPanicClosesConnection(t *testing.T) {
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	b.Register("boom", HandlerFunc(func(Message) { panic("kaboom") }))
	start := time.Now()
	_, err := a.Call(deadlineCtx(t, 5*time.Second), b.Self(), "boom", nil)
	took := time.Since(start)
	if !errors.Is(err, &RemoteError{Code: CodeHandlerPanic}) && !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("call to a panicking handler = %v", err)
	}
	t.Logf("panicking call: %v", err)
	if took > failFastBound {
		t.Fatalf("call to a panicking handler took %v", took)
	}
	waitFor(t, "the link reconnects", func() bool { return a.Stats().Reconnects == 1 && a.Connected(b.Self().ID) })
	if got, err := a.Call(ctxT(t), b.Self(), "echo", []byte("ok")); err != nil || string(got) != "ok" {
		t.Fatalf("call after the panic = %q, %v", got, err)
	}
	// A cast that panics closes the connection too.
	if err := a.Cast(b.Self(), "boom", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the link reconnects again", func() bool { return a.Stats().Reconnects == 2 && a.Connected(b.Self().ID) })
	if n := b.Stats().HandlerPanics; n != 2 {
		t.Fatalf("Stats.HandlerPanics = %d, want 2", n)
	}
}

// Stopping a link fails the calls still queued in it at once with
// ErrInactiveConnection: nothing will ever send them.
func TestDisconnectFailsQueuedCalls(t *testing.T) {
	a := startKernel(t, func(c *Config) { c.HandshakeTimeout = time.Minute })
	n := silentPeer(t)
	if err := a.Connect(n); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(deadlineCtx(t, 5*time.Second), n, "x", nil)
		errc <- err
	}()
	waitFor(t, "call queued", func() bool { return queueLen(a, n.ID) == 1 })
	start := time.Now()
	if err := a.Disconnect(ctxT(t), n.ID, true); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if took := time.Since(start); !errors.Is(err, ErrInactiveConnection) || took > failFastBound {
		t.Fatalf("queued call = %v after %v, want ErrInactiveConnection at once", err, took)
	}
}
