package conflux

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// Perform works from every node (followers forward), returns after the
// local apply, and every node converges on the same state.
func TestPerformFromAnyNode(t *testing.T) {
	g := newGroup(t, 3, nil)
	for round := range 3 {
		for i, s := range g.stores {
			a, err := s.Perform(ctxT(t), "add", i+1)
			if err != nil {
				t.Fatalf("round %d: Perform on n%d: %v", round, i, err)
			}
			if a != i+1 {
				t.Fatalf("Perform returned action %d, want %d", a, i+1)
			}
			// Applied locally before Perform returned.
			if got := s.State().Log; len(got) == 0 || got[len(got)-1] != i+1 {
				t.Fatalf("n%d State after Perform misses its write: %v", i, got)
			}
		}
	}
	want := 3 * (1 + 2 + 3)
	for i, s := range g.stores {
		st, err := s.Read(ctxT(t), Linearizable)
		if err != nil || st.N != want {
			t.Fatalf("n%d Linearizable Read = %+v, %v; want N=%d", i, st, err, want)
		}
	}
}

// Method errors reach callers on every node, matching Config.Errors with
// errors.Is; ErrNoAction and unknown methods dispatch nothing.
func TestPerformErrors(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	f := (l + 1) % 3
	for _, i := range []int{l, f} {
		s := g.stores[i]
		if _, err := s.Perform(ctxT(t), "add", -5); !errors.Is(err, errNegative) {
			t.Fatalf("n%d: Perform(add -5) = %v, want errNegative", i, err)
		}
		if _, err := s.Perform(ctxT(t), "noop", nil); !errors.Is(err, ErrNoAction) {
			t.Fatalf("n%d: Perform(noop) = %v, want ErrNoAction", i, err)
		}
		if _, err := s.Perform(ctxT(t), "missing", nil); !errors.Is(err, ErrUnknownMethod) {
			t.Fatalf("n%d: Perform(missing) = %v, want ErrUnknownMethod", i, err)
		}
	}
	var me *MethodError
	if _, err := g.stores[f].Perform(ctxT(t), "add", -1); !errors.As(err, &me) || me.Method != "add" {
		t.Fatalf("follower error = %T %v, want *MethodError", err, err)
	}
	if st := g.stores[l].State(); st.N != 0 || len(st.Log) != 0 {
		t.Fatalf("rejected performs changed the state: %+v", st)
	}
}

// Subscribe's functions see every action in log order with increasing indexes.
func TestSubscribeInLogOrder(t *testing.T) {
	g := newGroup(t, 3, nil)
	f := (g.leader() + 1) % 3
	type seen struct {
		a     int
		index uint64
	}
	ch := make(chan seen, 100)
	unsub := g.stores[f].Subscribe(func(_ counter, a int, index uint64) { ch <- seen{a, index} })
	defer unsub()
	for i := 1; i <= 20; i++ {
		if _, err := g.stores[i%3].Perform(ctxT(t), "add", i); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := 1; i <= 20; i++ {
		select {
		case s := <-ch:
			if s.a != i || s.index <= last {
				t.Fatalf("event %d = %+v after index %d", i, s, last)
			}
			last = s.index
		case <-time.After(10 * time.Second):
			t.Fatalf("missing event %d", i)
		}
	}
}

// A follower's request with a request ID applies once, however often it
// is retried; an older seq is refused.
func TestRequestIDAppliesOnce(t *testing.T) {
	g := newGroup(t, 3, nil)
	s := g.stores[(g.leader()+1)%3]
	ctx := WithRequestID(ctxT(t), "client-1", 7)
	for range 3 {
		if _, err := s.Perform(ctx, "add", 10); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := s.Read(ctxT(t), Linearizable); st.N != 10 {
		t.Fatalf("N = %d after three tries of one request, want 10", st.N)
	}
	if _, err := s.Perform(WithRequestID(ctxT(t), "client-1", 6), "add", 1); !errors.Is(err, ErrStaleRequest) {
		t.Fatalf("older seq = %v, want ErrStaleRequest", err)
	}
	if _, err := s.Perform(WithRequestID(ctxT(t), "client-1", 8), "add", 1); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Read(ctxT(t), Linearizable); st.N != 11 {
		t.Fatalf("N = %d, want 11", st.N)
	}
}

// The session table is bounded: the least recently used client is
// forgotten, identically on every node.
func TestSessionTableBounded(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	s.cfg.MaxSessions = 2
	for i, c := range []string{"a", "b", "c"} {
		if _, err := s.Perform(WithRequestID(ctxT(t), c, 1), "add", i); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.fsm.session("a"); ok {
		t.Fatal("oldest client still in a table of 2")
	}
	for _, c := range []string{"b", "c"} {
		if _, ok := s.fsm.session(c); !ok {
			t.Fatalf("client %s forgotten", c)
		}
	}
}

// The leader's provisional state includes actions not yet committed;
// after commit it equals the committed state.
func TestProvisionalState(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.stores[g.leader()]
	if _, err := l.Perform(ctxT(t), "add", 2); err != nil {
		t.Fatal(err)
	}
	// Hold an action in flight by hand, as propose does before Raft
	// commits it.
	l.fsm.mu.Lock()
	l.fsm.pending = append(l.fsm.pending, pending[int]{p: 1, action: 40})
	l.fsm.rebaseLocked()
	l.fsm.mu.Unlock()
	if got := l.ProvisionalState().N; got != 42 {
		t.Fatalf("ProvisionalState().N = %d, want 42", got)
	}
	if got := l.State().N; got != 2 {
		t.Fatalf("State().N = %d, want 2", got)
	}
	l.resetPending()
	if got := l.ProvisionalState().N; got != 2 {
		t.Fatalf("after reset ProvisionalState().N = %d, want 2", got)
	}
	// Methods validate against the provisional state: with 40 in flight,
	// adding -41 is allowed where the committed state alone refuses it.
	if _, err := l.Perform(ctxT(t), "add", -3); !errors.Is(err, errNegative) {
		t.Fatalf("add -3 to 2 = %v, want errNegative", err)
	}
}

// A follower's provisional state is its committed state plus the
// entries it has stored beyond its applied index, in log order. Its apply
// goroutine is held up by a Subscribe function, so entries the leader commits
// reach the follower's log but not its state: ProvisionalState shows
// them, State does not, until the follower applies them.
func TestFollowerProvisionalState(t *testing.T) {
	g := newGroup(t, 3, nil)
	li := g.leader()
	l, f := g.stores[li], g.stores[(li+1)%3]
	held, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unsub := f.Subscribe(func(counter, int, uint64) {
		once.Do(func() {
			close(held)
			<-hold
		})
	})
	defer unsub()
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // before the group stops: Stop waits for the apply goroutine
	if _, err := l.Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-ctxT(t).Done():
		t.Fatal("the follower did not apply the first action")
	}
	for _, d := range []int{10, 100} {
		if _, err := l.Perform(ctxT(t), "add", d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the follower's provisional state to include the stored entries", func() bool {
		return f.ProvisionalState().N == 111
	})
	if got, want := f.ProvisionalState().Log, []int{1, 10, 100}; !slices.Equal(got, want) {
		t.Fatalf("follower ProvisionalState().Log = %v, want %v", got, want)
	}
	if got := f.State(); got.N != 1 || !slices.Equal(got.Log, []int{1}) {
		t.Fatalf("follower State() = %+v while its apply is held, want N=1 Log=[1]", got)
	}
	release()
	waitFor(t, "the follower to apply the entries", func() bool { return f.State().N == 111 })
	if got := f.ProvisionalState(); got.N != 111 || !slices.Equal(got.Log, []int{1, 10, 100}) {
		t.Fatalf("follower ProvisionalState() after apply = %+v, want N=111 Log=[1 10 100]", got)
	}
}

// A stopped leader is replaced; performs from the survivors go on; the
// old leader's node reports ErrClosed; leadership transfer works.
func TestFailoverAndTransfer(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	if _, err := g.stores[l].Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
	if err := g.stores[l].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := g.stores[l].Perform(ctxT(t), "add", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Perform after Stop = %v, want ErrClosed", err)
	}
	nl := g.leader()
	if nl == l {
		t.Fatal("stopped node still leader")
	}
	other := 3 - l - nl
	if _, err := g.stores[other].Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
	// A follower cannot transfer; the leader can.
	var nle *NotLeaderError
	if err := g.stores[other].TransferLeadership(ctxT(t), g.nodes[nl].Self().ID); !errors.As(err, &nle) || nle.Leader.ID != g.nodes[nl].Self().ID {
		t.Fatalf("transfer from follower = %v, want NotLeaderError naming %s", err, g.nodes[nl].Self().ID)
	}
	if err := g.stores[nl].TransferLeadership(ctxT(t), g.nodes[other].Self().ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "transfer", func() bool { l, ok := g.stores[nl].Leader(); return ok && l.ID == g.nodes[other].Self().ID })
	st, err := g.stores[nl].Read(ctxT(t), Linearizable)
	if err != nil || st.N != 2 {
		t.Fatalf("Read after failover = %+v, %v; want N=2", st, err)
	}
}

// Over MaxPending waiting requests, Perform and Read fail at once with
// ErrOverloaded and Stats counts them.
func TestMaxPending(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	s.cfg.MaxPending = 1
	s.pending.Add(1) // one request already waiting
	if _, err := s.Perform(ctxT(t), "add", 1); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Perform over the budget = %v, want ErrOverloaded", err)
	}
	if _, err := s.Read(ctxT(t), Linearizable); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Read over the budget = %v, want ErrOverloaded", err)
	}
	if st := s.Stats(); st.Overloaded != 2 || st.Pending != 1 {
		t.Fatalf("Stats = %+v, want 2 overloaded and 1 pending", st)
	}
	s.pending.Add(-1)
	if _, err := s.Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
}

// On the leader a Method's error comes back as the very value it
// returned.
func TestMethodErrorUnchangedOnLeader(t *testing.T) {
	g := newGroup(t, 1, nil)
	_, err := g.stores[0].Perform(ctxT(t), "add", -1)
	var me *MethodError
	if errors.As(err, &me) || !errors.Is(err, errNegative) {
		t.Fatalf("leader's method error = %T %v, want the method's own error", err, err)
	}
}
