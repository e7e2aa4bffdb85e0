package genserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// The constructor, the id and the kernel accessor. notp's streams accessor is
// gone: stream reassembly is the kernel's job now.
func TestNew(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, genserver.Config{})
	if s.Kernel() != k {
		t.Fatal("Kernel() is not the kernel given to New")
	}
	if s.Name() == "" {
		t.Fatal("unnamed server has an empty id")
	}
	if s2 := newServer(t, k, genserver.Config{}); s2.Name() == s.Name() {
		t.Fatalf("two unnamed servers share id %q", s.Name())
	}
	if s := newServer(t, k, genserver.Config{Name: "named"}); s.Name() != "named" {
		t.Fatalf("Name() = %q, want named", s.Name())
	}
	if s.Running() || s.Paused() || !s.Idle() {
		t.Fatal("a new server should be stopped, unpaused and idle")
	}
	if _, err := genserver.New(nil, genserver.Config{}); !errors.Is(err, genserver.ErrNilKernel) {
		t.Fatalf("New(nil) error = %v", err)
	}
	for _, cfg := range []genserver.Config{{MailboxSize: -1}, {CallTimeout: -1}} {
		if _, err := genserver.New(k, cfg); !errors.Is(err, genserver.ErrInvalidConfig) {
			t.Fatalf("New(%+v) error = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// Starting under a name the kernel already has fails, and the name is not
// mutated.
func TestStartNameTaken(t *testing.T) {
	k := newKernel(t)
	first := startServer(t, k, genserver.Config{Name: "taken"})
	s := newServer(t, k, genserver.Config{Name: "taken"})
	if err := s.Start(ctxT(t)); !errors.Is(err, kernel.ErrNameTaken) {
		t.Fatalf("Start error = %v, want ErrNameTaken", err)
	}
	if s.Name() != "taken" || s.Running() {
		t.Fatalf("after failed Start: name %q running %v", s.Name(), s.Running())
	}
	// An unnamed server whose random id collides keeps its id too.
	u := newServer(t, k, genserver.Config{})
	id := u.Name()
	if err := k.Register(id, kernel.HandlerFunc(func(kernel.Message) {})); err != nil {
		t.Fatal(err)
	}
	if err := u.Start(ctxT(t)); !errors.Is(err, kernel.ErrNameTaken) {
		t.Fatalf("Start error = %v, want ErrNameTaken", err)
	}
	if u.Name() != id {
		t.Fatalf("id changed from %q to %q on failure", id, u.Name())
	}
	// Once the first server stops, the name is free.
	if err := first.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctxT(t)); err != nil {
		t.Fatalf("Start after the owner stopped: %v", err)
	}
	if err := s.Start(ctxT(t)); !errors.Is(err, genserver.ErrAlreadyStarted) {
		t.Fatalf("second Start error = %v, want ErrAlreadyStarted", err)
	}
}

// Start and stop, changed from notp: Stop emits a stop event on the lifecycle
// channel, unregisters the name and, for an unnamed server, picks a new id;
// it is idempotent and a restart works.
func TestStartStopRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	k := newKernel(t)
	ctx := ctxT(t)
	for _, name := range []string{"", "fixed"} {
		s := newServer(t, k, genserver.Config{Name: name})
		s.Handle("echo", echo)
		events, cancel := s.Subscribe(8)
		id := s.Name()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if s.Name() != id {
			t.Fatalf("Start changed the id from %q to %q", id, s.Name())
		}
		if e := recv(t, events); e != (genserver.Event{Kind: genserver.EventStart, Name: id}) {
			t.Fatalf("event %+v, want start", e)
		}
		got, err := s.Call(ctx, genserver.Target{Name: id}, "echo", []byte("hi"))
		if err != nil || string(got) != "hi" {
			t.Fatalf("Call = %q, %v", got, err)
		}
		if e := recv(t, events); e.Kind != genserver.EventIdle {
			t.Fatalf("event %+v, want idle", e)
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if e := recv(t, events); e != (genserver.Event{Kind: genserver.EventStop, Name: id}) {
			t.Fatalf("event %+v, want stop", e)
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		_, err = s.Call(ctx, genserver.Target{Name: id}, "echo", nil)
		wantCode(t, err, kernel.CodeUnknownName)
		if err := s.Pause(); !errors.Is(err, genserver.ErrNotStarted) {
			t.Fatalf("Pause on a stopped server: %v", err)
		}
		if name == "" && s.Name() == id {
			t.Fatal("an unnamed server kept its id across Stop")
		}
		if name != "" && s.Name() != name {
			t.Fatalf("a named server's name changed to %q", s.Name())
		}
		if err := s.Start(ctx); err != nil {
			t.Fatalf("restart: %v", err)
		}
		got, err = s.Call(ctx, genserver.Target{Name: s.Name()}, "echo", []byte("again"))
		if err != nil || string(got) != "again" {
			t.Fatalf("Call after restart = %q, %v", got, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// Changed from notp: Idle means no queued or in-flight message (no partial
// streams exist at this level), and an idle event follows the work.
func TestIdle(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, genserver.Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	s.Handle("block", func(ctx context.Context, r genserver.Request) ([]byte, error) {
		entered <- struct{}{}
		<-release
		return nil, nil
	})
	events, cancel := s.Subscribe(8)
	defer cancel()
	if err := s.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, events) // start
	if err := s.Cast(genserver.Target{Name: s.Name()}, "block", nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	if s.Idle() {
		t.Fatal("Idle() while a handler runs")
	}
	close(release)
	if e := recv(t, events); e.Kind != genserver.EventIdle {
		t.Fatalf("event %+v, want idle", e)
	}
	if !s.Idle() {
		t.Fatal("not Idle() after the idle event")
	}
}

// Local call and cast, in the new API: a Target without a node is the local
// kernel; the handler sees the data and From.Node = self.
func TestLocalCallCast(t *testing.T) {
	k := newKernel(t)
	s := startServer(t, k, genserver.Config{Name: "local"})
	casts := make(chan genserver.Request, 1)
	s.Handle("echo", echo)
	s.Handle("note", func(_ context.Context, r genserver.Request) ([]byte, error) {
		casts <- r
		return []byte("ignored"), nil
	})
	ctx := ctxT(t)
	payload := bytes.Repeat([]byte{0xab}, 1000)
	got, err := s.Call(ctx, genserver.Target{Name: "local"}, "echo", payload)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Call = %d bytes, %v", len(got), err)
	}
	if err := s.Cast(genserver.Target{Name: "local"}, "note", []byte("x")); err != nil {
		t.Fatal(err)
	}
	r := <-casts
	if r.Event != "note" || string(r.Data) != "x" || r.From.Node != k.Self() || r.From.IsCall() {
		t.Fatalf("cast request %+v", r)
	}
}

// Safe and deferred replies: a handler returns NoReply and answers later from
// another goroutine; Reply to a cast fails.
func TestDeferredReply(t *testing.T) {
	k := newKernel(t)
	s := startServer(t, k, genserver.Config{Name: "deferred"})
	froms := make(chan kernel.From, 2)
	s.Handle("later", func(_ context.Context, r genserver.Request) ([]byte, error) {
		froms <- r.From
		return nil, genserver.NoReply
	})
	ctx := ctxT(t)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := s.Call(ctx, genserver.Target{Name: "deferred"}, "later", nil)
		done <- result{b, err}
	}()
	from := <-froms
	if !s.Idle() {
		// The handler returned: deferred replies are not in-flight work.
		testutil.WaitFor(t, "idle", s.Idle)
	}
	go func() { _ = s.Reply(from, []byte("done")) }()
	if r := <-done; r.err != nil || string(r.b) != "done" {
		t.Fatalf("deferred Call = %q, %v", r.b, r.err)
	}
	if err := s.Cast(genserver.Target{Name: "deferred"}, "later", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Reply(<-froms, []byte("x")); !errors.Is(err, kernel.ErrNoReplyTag) {
		t.Fatalf("Reply to a cast: %v, want ErrNoReplyTag", err)
	}
	// ReplyValue answers a typed caller.
	genserver.HandleTyped(s, "typed", func(_ context.Context, n int, from kernel.From) (int, error) {
		go func() { _ = s.ReplyValue(from, n*2) }()
		return 0, genserver.NoReply
	})
	if n, err := genserver.Call[int](ctx, k, genserver.Target{Name: "deferred"}, "typed", 21); err != nil || n != 42 {
		t.Fatalf("typed deferred Call = %d, %v", n, err)
	}
}

// Error replies instead of silence: unknown events, handler errors, panics.
func TestErrorReplies(t *testing.T) {
	k := newKernel(t)
	s := startServer(t, k, genserver.Config{Name: "errs"})
	target := genserver.Target{Name: "errs"}
	s.Handle("fail", func(context.Context, genserver.Request) ([]byte, error) {
		return nil, kernel.Errorf("NOT_FOUND", "no such key")
	})
	s.Handle("plain", func(context.Context, genserver.Request) ([]byte, error) {
		return nil, errors.New("plain failure")
	})
	s.Handle("panic", func(context.Context, genserver.Request) ([]byte, error) {
		panic("boom")
	})
	s.Handle("echo", echo)
	ctx := ctxT(t)

	_, err := s.Call(ctx, target, "nope", nil)
	wantCode(t, err, genserver.CodeUnknownEvent)
	_, err = s.Call(ctx, target, "fail", nil)
	wantCode(t, err, "NOT_FOUND")
	_, err = s.Call(ctx, target, "plain", nil)
	var re *kernel.RemoteError
	if !errors.As(err, &re) || re.Message != "plain failure" {
		t.Fatalf("plain error = %v", err)
	}
	_, err = s.Call(ctx, target, "panic", nil)
	wantCode(t, err, kernel.CodeHandlerPanic)
	// The actor survives a panic, also one caused by a cast.
	if err := s.Cast(target, "panic", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Call(ctx, target, "echo", []byte("alive")); err != nil || string(got) != "alive" {
		t.Fatalf("Call after panic = %q, %v", got, err)
	}
	if err := s.Cast(target, "nope", nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "counters", func() bool {
		st := s.Stats()
		return st.UnknownEvents == 2 && st.Panics == 2
	})
	// Removing a handler makes its event unknown.
	s.Handle("echo", nil)
	_, err = s.Call(ctx, target, "echo", nil)
	wantCode(t, err, genserver.CodeUnknownEvent)

	// A catch-all handler answers every event without a handler of its
	// own, calls and casts; registered handlers still win.
	var casts atomic.Int64
	s.HandleUnknown(func(_ context.Context, r genserver.Request) ([]byte, error) {
		if !r.From.IsCall() {
			casts.Add(1)
		}
		return []byte("other:" + r.Event + ":" + string(r.Data)), nil
	})
	if got, err := s.Call(ctx, target, "echo", []byte("x")); err != nil || string(got) != "other:echo:x" {
		t.Fatalf("Call of an unhandled event with a catch-all = %q, %v", got, err)
	}
	if _, err := s.Call(ctx, target, "plain", nil); err == nil {
		t.Fatal("the catch-all answered an event that has its own handler")
	}
	if err := s.Cast(target, "nope", nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "cast to the catch-all", func() bool { return casts.Load() == 1 })
	if st := s.Stats(); st.UnknownEvents != 3 {
		t.Fatalf("UnknownEvents = %d, want 3: the catch-all's events are not unknown", st.UnknownEvents)
	}
	s.HandleUnknown(nil)
	_, err = s.Call(ctx, target, "echo", nil)
	wantCode(t, err, genserver.CodeUnknownEvent)
}

// Changed from notp: a malformed payload or a Decode error means no dispatch,
// and a caller gets CodeBadRequest instead of silence.
func TestBadRequests(t *testing.T) {
	k := newKernel(t)
	var handled sync.WaitGroup
	s := startServer(t, k, genserver.Config{
		Name: "strict",
		Decode: func(event string, data []byte) (any, error) {
			if len(data) == 0 {
				return nil, errors.New("empty data")
			}
			if data[0] == 'R' {
				return nil, kernel.Errorf("CUSTOM", "custom rejection")
			}
			return string(data) + "!", nil
		},
	})
	s.Handle("ev", func(_ context.Context, r genserver.Request) ([]byte, error) {
		defer handled.Done()
		return []byte(r.Value.(string)), nil
	})
	ctx := ctxT(t)
	target := genserver.Target{Name: "strict"}
	handled.Add(1)
	if got, err := s.Call(ctx, target, "ev", []byte("ok")); err != nil || string(got) != "ok!" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	_, err := s.Call(ctx, target, "ev", nil)
	wantCode(t, err, genserver.CodeBadRequest)
	_, err = s.Call(ctx, target, "ev", []byte("R"))
	wantCode(t, err, "CUSTOM")
	// A payload that is not {event, data} at all, sent with the raw kernel.
	_, err = k.Call(ctx, k.Self(), "strict", []byte("garbage"))
	wantCode(t, err, genserver.CodeBadRequest)
	if err := k.Cast(k.Self(), "strict", []byte{0x82}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "counters", func() bool {
		st := s.Stats()
		return st.Malformed == 2 && st.BadRequests == 2
	})
	handled.Wait()
	if st := s.Stats(); st.Handled != 1 {
		t.Fatalf("Handled = %d, want 1", st.Handled)
	}
}

// Changed from notp: a paused server drops what arrives (counted; callers get
// CodePaused instead of waiting), keeps its name, and Resume restores
// delivery. Pause and resume are lifecycle events.
func TestPauseResume(t *testing.T) {
	k := newKernel(t)
	s := startServer(t, k, genserver.Config{Name: "pausable"})
	var casts atomicCount
	s.Handle("echo", echo)
	s.Handle("count", func(context.Context, genserver.Request) ([]byte, error) {
		casts.add()
		return nil, nil
	})
	events, cancel := s.Subscribe(8)
	defer cancel()
	ctx := ctxT(t)
	target := genserver.Target{Name: "pausable"}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events); e.Kind != genserver.EventPause {
		t.Fatalf("event %+v, want pause", e)
	}
	if !s.Paused() {
		t.Fatal("Paused() = false")
	}
	_, err := s.Call(ctx, target, "echo", nil)
	wantCode(t, err, genserver.CodePaused)
	for range 3 {
		if err := s.Cast(target, "count", nil); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "paused drops", func() bool { return s.Stats().Paused == 4 })
	// The name stays taken while paused.
	other := newServer(t, k, genserver.Config{Name: "pausable"})
	if err := other.Start(ctx); !errors.Is(err, kernel.ErrNameTaken) {
		t.Fatalf("Start on a paused server's name: %v", err)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events); e.Kind != genserver.EventResume {
		t.Fatalf("event %+v, want resume", e)
	}
	if got, err := s.Call(ctx, target, "echo", []byte("back")); err != nil || string(got) != "back" {
		t.Fatalf("Call after Resume = %q, %v", got, err)
	}
	if n := casts.load(); n != 0 {
		t.Fatalf("%d casts sent while paused were handled", n)
	}
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCount) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCount) load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Stop drains the mailbox when its ctx allows; a done ctx forces: the
// handler's ctx is cancelled and queued callers get CodeStopped.
func TestStopDrainAndForce(t *testing.T) {
	k := newKernel(t)
	ctx := ctxT(t)
	t.Run("drain", func(t *testing.T) {
		s := startServer(t, k, genserver.Config{Name: "drain"})
		entered, release := make(chan struct{}, 1), make(chan struct{})
		var handled atomicCount
		s.Handle("work", func(context.Context, genserver.Request) ([]byte, error) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			handled.add()
			return nil, nil
		})
		for range 5 {
			if err := s.Cast(genserver.Target{Name: "drain"}, "work", nil); err != nil {
				t.Fatal(err)
			}
		}
		<-entered
		testutil.WaitFor(t, "queued casts", func() bool { return s.Stats().Queued == 4 })
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop(ctx) }()
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if n := handled.load(); n != 5 {
			t.Fatalf("handled %d of 5 queued casts", n)
		}
	})
	t.Run("force", func(t *testing.T) {
		s, results := busyServer(t, ctx, k, "force", 3)
		sctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Stop(sctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("forced Stop = %v, want context.Canceled", err)
		}
		var stoppedN, canceledN int
		for range 3 {
			err := <-results
			var re *kernel.RemoteError
			switch {
			case errors.Is(err, &kernel.RemoteError{Code: genserver.CodeStopped}):
				stoppedN++
			case errors.As(err, &re) && re.Message == context.Canceled.Error():
				canceledN++
			default:
				t.Fatalf("call during forced stop: %v", err)
			}
		}
		if stoppedN != 2 || canceledN != 1 {
			t.Fatalf("%d stopped, %d cancelled; want 2 and 1", stoppedN, canceledN)
		}
	})
	// Close is the forced stop without the cancellation in its result: it
	// returns nil, the queued caller gets CodeStopped, and a second Close
	// or a Stop after it returns nil too.
	t.Run("close", func(t *testing.T) {
		s, results := busyServer(t, ctx, k, "close", 2)
		if err := s.Close(); err != nil {
			t.Fatalf("Close = %v, want nil", err)
		}
		if s.Running() {
			t.Fatal("running after Close")
		}
		stoppedN := 0
		for range 2 {
			if err := <-results; errors.Is(err, &kernel.RemoteError{Code: genserver.CodeStopped}) {
				stoppedN++
			} else if err == nil {
				t.Fatal("a call was handled to the end across Close")
			}
		}
		if stoppedN != 1 {
			t.Fatalf("%d calls got CodeStopped, want the queued one", stoppedN)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatalf("Stop after Close = %v", err)
		}
	})
}

// busyServer starts a server whose "wait" handler runs until its context
// ends and makes calls to it: one is being handled and the others queued
// when it returns. Each call's error arrives on results.
func busyServer(t *testing.T, ctx context.Context, k *kernel.Kernel, name string, calls int) (*genserver.Server, <-chan error) {
	t.Helper()
	s := startServer(t, k, genserver.Config{Name: name})
	entered := make(chan struct{}, 1)
	s.Handle("wait", func(hctx context.Context, _ genserver.Request) ([]byte, error) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-hctx.Done()
		return nil, hctx.Err()
	})
	results := make(chan error, calls)
	for range calls {
		go func() {
			_, err := s.Call(ctx, genserver.Target{Name: name}, "wait", nil)
			results <- err
		}()
	}
	<-entered
	testutil.WaitFor(t, "queued calls", func() bool { return s.Stats().Queued == calls-1 })
	return s, results
}

// A subscription asked without room gets the default 64 slots (with none
// it would lose every event its reader is not already waiting for), and a
// huge one is capped.
func TestSubscribeBufferSizes(t *testing.T) {
	s := newServer(t, newKernel(t), genserver.Config{})
	for _, tc := range []struct{ buf, want int }{{-1, 64}, {0, 64}, {1, 1}, {100, 100}, {1 << 30, 1 << 16}} {
		events, cancel := s.Subscribe(tc.buf)
		if got := cap(events); got != tc.want {
			t.Errorf("Subscribe(%d): capacity %d, want %d", tc.buf, got, tc.want)
		}
		cancel()
	}
}

// Lifecycle events never block the server: a full subscriber loses events
// and the loss is counted; an unsubscribed channel is closed.
func TestSubscribeDrops(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, genserver.Config{})
	events, cancel := s.Subscribe(1)
	ctx := ctxT(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.EventsDropped != 2 {
		t.Fatalf("EventsDropped = %d, want 2", st.EventsDropped)
	}
	if e := recv(t, events); e.Kind != genserver.EventStart {
		t.Fatalf("kept event %v, want start", e.Kind)
	}
	cancel()
	cancel()
	if _, ok := <-events; ok {
		t.Fatal("channel not closed after unsubscribe")
	}
	if err := s.Stop(ctx); err != nil { // emits to nobody
		t.Fatal(err)
	}
	for k, want := range map[genserver.EventKind]string{
		genserver.EventStart: "start", genserver.EventPause: "pause", genserver.EventResume: "resume",
		genserver.EventStop: "stop", genserver.EventIdle: "idle", 0: "unknown",
	} {
		if k.String() != want {
			t.Fatalf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}

// The handler ctx is cancelled by Stop, and one goroutine owns the state: a
// counter without locks hammered by concurrent callers (run with -race).
func TestOneGoroutineOwnsState(t *testing.T) {
	k := newKernel(t)
	s := startServer(t, k, genserver.Config{Name: "counter"})
	n := 0 // owned by the actor goroutine
	s.Handle("inc", func(context.Context, genserver.Request) ([]byte, error) {
		n++
		return fmt.Appendf(nil, "%d", n), nil
	})
	s.Handle("get", func(context.Context, genserver.Request) ([]byte, error) {
		return fmt.Appendf(nil, "%d", n), nil
	})
	const callers, each = 8, 100
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for range each {
				if _, err := s.Call(ctx, genserver.Target{Name: "counter"}, "inc", nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.Call(ctx, genserver.Target{Name: "counter"}, "get", nil)
	if err != nil || string(got) != fmt.Sprint(callers*each) {
		t.Fatalf("count = %s, %v; want %d", got, err, callers*each)
	}
}
