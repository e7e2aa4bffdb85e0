package dsm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dsm/internal/wire"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated/replicatedtest"
)

func TestLifecycleSentinels(t *testing.T) {
	c, ss := form(t, clustertest.Config{Nodes: 1}, Config{}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	s, err := New(c.Node(0), Config{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "s", 1); !errors.Is(err, ErrNotStarted) || !errors.Is(err, notp.ErrNotStarted) {
		t.Fatalf("before Start: %v", err)
	}
	if err := s.Stop(ctx); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrAlreadyStarted) || !errors.Is(err, notp.ErrAlreadyStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Post(ctx, "s", "h", time.Second); !errors.Is(err, ErrClosed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("after Stop: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Stop: %v", err)
	}
	if _, err := New(c.Node(0), Config{MinWait: time.Second, MaxWait: time.Millisecond}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	if err := ss.At(0).Create(ctx, "s", 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("n=0: %v", err)
	}
	if err := ss.At(0).Post(ctx, "", "h", time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty id: %v", err)
	}
}

// StopNow is the DSM's immediate stop (it has no Close(): that name is
// the semaphore operation): before Start it reports ErrNotStarted, as Stop
// does; on a started DSM it returns nil at once, a second StopNow and a
// Stop after it return nil, and the DSM then refuses work with ErrClosed.
func TestStopNowStopsAtOnce(t *testing.T) {
	c, _ := form(t, clustertest.Config{Nodes: 1}, Config{}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	s, err := New(c.Node(0), Config{Name: "closing", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StopNow(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("StopNow before Start: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "s", 1); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.StopNow() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("StopNow = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("StopNow did not return within 5s")
	}
	if err := s.StopNow(); err != nil {
		t.Fatalf("second StopNow: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop after StopNow: %v", err)
	}
	if err := s.Create(ctx, "s", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after StopNow: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after StopNow: %v", err)
	}
}

// Stop keeps the semaphores and their holders: a DSM started again on the
// same directory has them, each holder with the time it had left.
func TestStopKeepsPersistedStateForTheNextStart(t *testing.T) {
	c, ss := form(t, clustertest.Config{Nodes: 1, Faults: true}, Config{}, false)
	ctx := clustertest.Context(t, 20*time.Second)
	if err := ss.At(0).Create(ctx, "s", 2); err != nil {
		t.Fatal(err)
	}
	if err := ss.At(0).Post(ctx, "s", "h", time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	if info, err := ss.At(0).Read(ctx, "s"); err != nil || info != (Info{N: 2, Active: 1}) {
		t.Fatalf("after restart: %+v %v", info, err)
	}
}

func TestPostRetriesUntilAPlaceFreesUp(t *testing.T) {
	_, ss := form(t, clustertest.Config{Nodes: 1}, Config{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	s := ss.At(0)
	if err := s.Create(ctx, "s", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Post(ctx, "s", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		clustertest.WaitFor(t, "b refused at least once", func() bool { return s.srv.Stats().Handled > 3 })
		if err := s.CloseAsync("s", "a"); err != nil {
			t.Error(err)
		}
	})
	if err := s.Post(ctx, "s", "b", time.Minute); err != nil {
		t.Fatalf("post after a place freed up: %v", err)
	}
	wg.Wait()
	if info, _ := s.Read(ctx, "s"); info.Active != 1 {
		t.Fatalf("active %d", info.Active)
	}
}

// A grant that arrives after its TTL ran out is not a grant: the client
// gives the place back and, without retries, fails.
func TestPostPastItsTTLFails(t *testing.T) {
	var mu sync.Mutex
	clk := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clk = clk.Add(400 * time.Millisecond); return clk }
	_, ss := form(t, clustertest.Config{Nodes: 1}, Config{Retries: NoRetries, Now: now}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	s := ss.At(0)
	if err := s.Create(ctx, "s", 1); err != nil {
		t.Fatal(err)
	}
	err := s.Post(ctx, "s", "a", time.Second)
	var pe *PostError
	if !errors.As(err, &pe) || !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("err %v", err)
	}
	if want := "dsm: Failed to grab semaphore s with holder a."; err.Error()[:len(want)] != want {
		t.Fatalf("text %q", err)
	}
	clustertest.WaitFor(t, "the late place given back", func() bool {
		info, err := s.Read(context.Background(), "s")
		return err == nil && info.Active == 0
	})
}

// A peer's malformed requests get an error reply and change nothing.
func TestMalformedPeerRequestsGetErrorReplies(t *testing.T) {
	c, ss := form(t, clustertest.Config{Nodes: 1}, Config{}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	k := c.Node(0).Kernel()
	replicatedtest.ExpectErrorReplies(ctx, t, k, "dsm", []replicatedtest.BadRequest{
		{Event: wire.Create, Data: []byte("junk"), Code: CodeBadRequest},
		{Event: wire.Create, Data: encode(map[string]any{"id": "s", "n": "2"}), Code: CodeBadRequest},
		{Event: wire.Post, Data: encode(map[string]any{"id": "s", "holder": 1, "timeout": 5}), Code: CodeBadRequest},
		{Event: wire.Handoff, Data: encode(map[string]any{"id": "s", "n": 1, "holders": []any{map[string]any{"holder": "a", "left": -1}}}), Code: CodeBadRequest},
		{Event: "steal", Data: []byte{0x80}, Code: genserver.CodeUnknownEvent},
	})
	if _, err := ss.At(0).Read(ctx, "s"); !isCode(err, CodeNotFound) {
		t.Fatalf("bad requests created a semaphore: %v", err)
	}
}

// A request for a semaphore whose owner memberlist reports dead fails at
// once instead of waiting for its deadline.
func TestDeadOwnerFailsFast(t *testing.T) {
	c, ss := form(t, clustertest.Config{Nodes: 2, Faults: true}, Config{}, false)
	foo := ss.At(0)
	ctx := clustertest.Context(t, 30*time.Second)
	theirs, fresh := idOwnedBy(t, foo, "n1", "remote"), idOwnedBy(t, foo, "n1", "fresh")
	if err := foo.Create(ctx, theirs, 1); err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	clustertest.WaitFor(t, "n1 reported down", func() bool { return foo.ring.down("n1") })
	// Every request to the down owner fails at once with its error, and
	// changes nothing on the node that asked.
	ops := map[string]func() error{
		"Create":  func() error { return foo.Create(ctx, fresh, 1) },
		"Read":    func() error { _, err := foo.Read(ctx, theirs); return err },
		"Destroy": func() error { return foo.Destroy(ctx, theirs) },
		"Post":    func() error { return foo.Post(ctx, theirs, "h", time.Minute) },
		"Close":   func() error { return foo.Close(ctx, theirs, "h") },
	}
	for name, op := range ops {
		start := time.Now()
		if err := op(); !errors.Is(err, ErrOwnerDown) {
			t.Errorf("%s: err %v, want ErrOwnerDown", name, err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("%s took %v", name, el)
		}
	}
}
