package replicated

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/metrics"
	"github.com/notp-go/notp/table"
	"github.com/prometheus/client_golang/prometheus"
)

// newKernel returns the kernel of a one-node cluster, stopped at cleanup.
func newKernel(t *testing.T) *kernel.Kernel {
	t.Helper()
	return clustertest.Start(t, clustertest.Config{Nodes: 1}).Node(0).Kernel()
}

var testErrors = NewErrors("svc")

func newServer(t *testing.T, k *kernel.Kernel, cfg Config) *Server {
	t.Helper()
	cfg.Prefix, cfg.Errors, cfg.Logger = "svc", testErrors, testutil.Logger(t)
	if cfg.Name == "" {
		cfg.Name = "svc"
	}
	s, err := New(k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func noLoad(context.Context, *table.Table) error { return nil }

// The sentinels wrap notp's and carry the prefix.
func TestNewErrorsWrapNotpsSentinels(t *testing.T) {
	for _, c := range []struct {
		err, root error
		text      string
	}{
		{testErrors.AlreadyStarted, notp.ErrAlreadyStarted, "svc: already started"},
		{testErrors.NotStarted, notp.ErrNotStarted, "svc: not started"},
		{testErrors.Closed, notp.ErrClosed, "svc: closed"},
	} {
		if !errors.Is(c.err, c.root) || c.err.Error() != c.text {
			t.Errorf("%v: want %q wrapping %v", c.err, c.text, c.root)
		}
	}
}

// A Server moves once from new to started to stopped: Stop before Start
// and a second Start fail, a second Stop is a no-op, and a stopped Server
// does not start again.
func TestLifecycleStateMachine(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, Config{})
	ctx := testutil.Context(t, 10*time.Second)
	if err := s.Running(); !errors.Is(err, testErrors.NotStarted) || !errors.Is(err, notp.ErrNotStarted) {
		t.Fatalf("Running before Start = %v", err)
	}
	if err := s.Stop(ctx); !errors.Is(err, testErrors.NotStarted) {
		t.Fatalf("Stop before Start = %v", err)
	}
	if err := s.Start(ctx, noLoad); err != nil {
		t.Fatal(err)
	}
	if err := s.Running(); err != nil {
		t.Fatalf("Running while started = %v", err)
	}
	if err := s.Start(ctx, noLoad); !errors.Is(err, testErrors.AlreadyStarted) || !errors.Is(err, notp.ErrAlreadyStarted) {
		t.Fatalf("second Start = %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
	if err := s.Running(); !errors.Is(err, testErrors.Closed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("Running after Stop = %v", err)
	}
	if err := s.Start(ctx, noLoad); !errors.Is(err, testErrors.Closed) {
		t.Fatalf("Start after Stop = %v", err)
	}
}

// Start hands load the open table and serves the genserver's handlers;
// each loop runs until Stop, which waits for it and closes the table.
func TestStartRunsLoopsUntilStop(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, Config{Dir: t.TempDir()})
	s.Genserver().Handle("ping", func(context.Context, genserver.Request) ([]byte, error) { return []byte("pong"), nil })
	ctx := testutil.Context(t, 10*time.Second)
	var st *table.Table
	load := func(_ context.Context, t *table.Table) error { st = t; return t.Set("k", []byte("v")) }
	running, ended := make(chan struct{}), make(chan struct{})
	loop := func(ctx context.Context) {
		close(running)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // a slow exit, which Stop must wait for
		close(ended)
	}
	if err := s.Start(ctx, load, loop); err != nil {
		t.Fatal(err)
	}
	<-running
	if b, err := s.Genserver().Call(ctx, genserver.Target{Name: "svc"}, "ping", nil); err != nil || string(b) != "pong" {
		t.Fatalf("call = %q, %v", b, err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Stop returned before its loop ended")
	}
	if err := st.Set("k2", nil); err == nil {
		t.Fatal("the table is still open after Stop")
	}
}

// A failed load is returned as it is, closes the table and leaves the
// Server new, so Start may be tried again.
func TestStartReturnsTheLoadErrorAndClosesTheTable(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, Config{})
	ctx := testutil.Context(t, 10*time.Second)
	bad := errors.New("svc: load: corrupt")
	var st *table.Table
	if err := s.Start(ctx, func(_ context.Context, t *table.Table) error { st = t; return bad }); err != bad {
		t.Fatalf("Start = %v, want the load error itself", err)
	}
	if err := st.Set("k", nil); err == nil {
		t.Fatal("the table is still open after a failed load")
	}
	if err := s.Running(); !errors.Is(err, testErrors.NotStarted) {
		t.Fatalf("Running after a failed Start = %v", err)
	}
	if err := s.Start(ctx, noLoad); err != nil {
		t.Fatalf("Start after a failed one: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// A table that does not open fails Start with the prefix and the cause.
func TestStartReportsATableThatDoesNotOpen(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, Config{Name: "bad/name", Dir: t.TempDir()})
	err := s.Start(testutil.Context(t, 10*time.Second), noLoad)
	if err == nil || !strings.HasPrefix(err.Error(), "svc: open table: ") {
		t.Fatalf("Start = %v, want an open table error", err)
	}
}

// The metrics source is reported while the Server is started, and only
// then.
func TestMetricsSourceRegisteredWhileStarted(t *testing.T) {
	k := newKernel(t)
	col := metrics.New(k, nil)
	src := func(emit func(metrics.Sample)) {
		Emitter{Emit: emit, Prefix: "notp_svc_", Name: "svc"}.Gauge("up", "Up.", 1)
	}
	s := newServer(t, k, Config{Metrics: col, Source: src})
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	reported := func() bool {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "notp_svc_up" {
				return true
			}
		}
		return false
	}
	ctx := testutil.Context(t, 10*time.Second)
	if reported() {
		t.Fatal("reported before Start")
	}
	if err := s.Start(ctx, noLoad); err != nil {
		t.Fatal(err)
	}
	if !reported() {
		t.Fatal("not reported while started")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if reported() {
		t.Fatal("still reported after Stop")
	}
}

// Close stops at once: a handler that only returns when its ctx ends is
// cancelled and the requests queued behind it are refused, where Stop with
// a live context would wait for them. Close before Start reports
// NotStarted, and a second Close, or a Stop after Close, returns nil.
func TestCloseStopsAtOnce(t *testing.T) {
	k := newKernel(t)
	s := newServer(t, k, Config{Dir: t.TempDir()})
	if err := s.Close(); !errors.Is(err, testErrors.NotStarted) {
		t.Fatalf("Close before Start = %v", err)
	}
	entered := make(chan struct{}, 1)
	s.Genserver().Handle("hold", func(ctx context.Context, _ genserver.Request) ([]byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx := testutil.Context(t, 10*time.Second)
	loopEnded := make(chan struct{})
	loop := func(ctx context.Context) { <-ctx.Done(); close(loopEnded) }
	if err := s.Start(ctx, noLoad, loop); err != nil {
		t.Fatal(err)
	}
	target := genserver.Target{Name: "svc"}
	for range 3 {
		if err := s.Genserver().Cast(target, "hold", nil); err != nil {
			t.Fatal(err)
		}
	}
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the held request")
	}
	select {
	case <-loopEnded:
	default:
		t.Fatal("Close returned before its loop ended")
	}
	if err := s.Running(); !errors.Is(err, testErrors.Closed) {
		t.Fatalf("Running after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop after Close = %v", err)
	}
}

// Stop with a live context drains the queue: a request queued behind a
// handler in progress when Stop begins is handled, with the table still
// open, and answered, and Stop returns nil once it was.
func TestStopDrainsQueuedRequests(t *testing.T) {
	k := newKernel(t)
	dir := t.TempDir()
	s := newServer(t, k, Config{Dir: dir})
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s.Genserver().Handle("hold", func(ctx context.Context, _ genserver.Request) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-release:
			return nil, nil
		case <-ctx.Done(): // a Stop that does not drain cancels it
			return nil, ctx.Err()
		}
	})
	var st *table.Table
	s.Genserver().Handle("put", func(_ context.Context, req genserver.Request) ([]byte, error) {
		if err := st.Set("queued", req.Data); err != nil {
			return nil, err
		}
		return []byte("done"), nil
	})
	ctx := testutil.Context(t, 10*time.Second)
	load := func(_ context.Context, t *table.Table) error { st = t; return nil }
	if err := s.Start(ctx, load); err != nil {
		t.Fatal(err)
	}
	target := genserver.Target{Name: "svc"}
	if err := s.Genserver().Cast(target, "hold", nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	type answer struct {
		reply []byte
		err   error
	}
	answered := make(chan answer, 1)
	go func() {
		b, err := s.Genserver().Call(ctx, target, "put", []byte("v"))
		answered <- answer{b, err}
	}()
	testutil.WaitFor(t, "the request queued behind the held one", func() bool { return s.Genserver().Stats().Queued == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	// Stop has reached the genserver once its name is gone from the
	// kernel: a cast to the name is then counted as unknown. The probe's
	// empty payload is dropped as malformed, never queued, should it
	// still reach the server.
	unknown := k.Stats().CastsUnknownName
	testutil.WaitFor(t, "Stop to unregister the server", func() bool {
		if err := k.Cast(k.Self(), "svc", nil); err != nil {
			t.Fatal(err)
		}
		return k.Stats().CastsUnknownName > unknown
	})
	select {
	case err := <-stopped:
		t.Fatalf("Stop = %v before the held request returned", err)
	default:
	}
	close(release)
	if a := <-answered; a.err != nil || string(a.reply) != "done" {
		t.Fatalf("queued call = %q, %v; want it handled during Stop", a.reply, a.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop = %v", err)
	}
	// The queued request's write reached the table before Stop closed it.
	saved, err := table.Open(table.Config{Dir: dir, Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	if v, err := saved.Get("queued"); err != nil || string(v) != "v" {
		t.Fatalf("table after Stop: %q, %v", v, err)
	}
}

// A Server made by Started reports itself running and stops quietly.
func TestStartedServerForClientTests(t *testing.T) {
	s := Started(testErrors)
	if err := s.Running(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Running(); !errors.Is(err, testErrors.Closed) {
		t.Fatalf("Running after Stop = %v", err)
	}
}

// Every calls fn once per interval until the loop's context ends.
func TestEveryTicksUntilItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Every(time.Second, func() { n.Add(1) })(ctx)
		}()
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if got := n.Load(); got != 3 {
			t.Fatalf("%d calls in 3.5 intervals, want 3", got)
		}
		cancel()
		<-done
		time.Sleep(2 * time.Second)
		if got := n.Load(); got != 3 {
			t.Fatalf("%d calls after the context ended, want 3", got)
		}
	})
}
