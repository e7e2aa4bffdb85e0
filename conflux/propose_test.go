package conflux

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A Perform that finds propMu held (here by the test, as a linearizable
// read holds it for its barrier) leaves its proposal queued; the holder
// runs it when it releases propMu. Released with a plain Unlock, the
// proposal would wait in the queue until the Perform timed out.
func TestQueuedProposalRunsWhenPropMuIsReleased(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.stores[g.leader()]
	if _, err := l.Perform(ctxT(t), "add", 1); err != nil { // the term's barrier
		t.Fatal(err)
	}
	l.propMu.Lock()
	done := make(chan error, 1)
	go func() {
		_, err := l.Perform(ctxT(t), "add", 2)
		done <- err
	}()
	waitFor(t, "the proposal queued", func() bool { return l.queued.Load() != nil })
	select {
	case err := <-done:
		t.Fatalf("Perform returned %v while propMu was held", err)
	default:
	}
	l.unlockProp()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := l.State().N; got != 3 {
		t.Fatalf("State().N = %d, want 3", got)
	}
}

// Many Performs at once: each runs exactly once, whichever goroutine
// runs it, and every node ends with every action applied.
func TestConcurrentPerformsEachRunOnce(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.stores[g.leader()]
	const workers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := l.Perform(ctxT(t), "add", 1); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := l.State().N; got != workers*each {
		t.Fatalf("leader State().N = %d, want %d", got, workers*each)
	}
	if l.queued.Load() != nil {
		t.Fatal("proposals left queued")
	}
	for i, s := range g.stores {
		waitFor(t, fmt.Sprintf("node %d applied every action", i), func() bool { return s.State().N == workers*each })
	}
}

// The in-flight actions keep their order through any mix of pushes and
// drops, the array is reused instead of regrown while they stay few, and
// no slot outside the window keeps a dropped action alive.
func TestPendingWindow(t *testing.T) {
	f := &fsm[counter, int]{s: &Store[counter, int]{cfg: Config[counter, int]{Reduce: reduceCounter}}}
	var want []uint64
	next := uint64(1)
	check := func(step string) {
		t.Helper()
		if len(f.pending) != len(want) {
			t.Fatalf("%s: %d in flight, want %d", step, len(f.pending), len(want))
		}
		for i, p := range f.pending {
			if p.p != want[i] || p.action != int(want[i]) {
				t.Fatalf("%s: in flight %v, want %v", step, f.pending, want)
			}
		}
		live := 0
		for _, p := range f.pendArr {
			if p.p != 0 {
				live++
			}
		}
		if live != len(want) {
			t.Fatalf("%s: %d slots of the array hold an action, %d are in flight", step, live, len(want))
		}
	}
	push := func(n int) {
		for range n {
			f.pushPendingLocked(pending[int]{p: next, action: int(next)})
			want = append(want, next)
			next++
		}
	}
	push(10)
	check("10 pushed")
	// A steady pipeline: as many pushed as committed, oldest first. Once
	// the array is twice the actions in flight, it is only reused.
	steady := func(n int) {
		for range n {
			f.dropPendingLocked(0)
			want = want[1:]
			push(1)
		}
	}
	steady(100)
	arr := &f.pendArr[0]
	steady(1000)
	check("steady pipeline")
	if &f.pendArr[0] != arr || len(f.pendArr) > 2*10+2 {
		t.Fatal("the array was regrown while 10 actions were in flight")
	}
	f.dropPendingLocked(4) // committed out of order
	want = append(want[:4:4], want[5:]...)
	check("middle dropped")
	push(100)
	check("grown")
	for len(want) > 0 {
		f.dropPendingLocked(0)
		want = want[1:]
	}
	check("all committed")
	push(3)
	f.clearPendingLocked()
	want = nil
	check("cleared")
}

// The zero Config gets the documented defaults; in particular the
// snapshot check runs every 5 s, so a busy group's log (in memory with
// InMemory) holds seconds of commits, not minutes.
func TestConfigDefaults(t *testing.T) {
	var c Config[counter, int]
	c.setDefaults()
	want := Config[counter, int]{
		Voters: 3, HeartbeatTimeout: time.Second, ElectionTimeout: time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond, CommitTimeout: 10 * time.Millisecond,
		SnapshotThreshold: 8192, SnapshotInterval: 5 * time.Second, TrailingLogs: 4096,
		PerformTimeout: 10 * time.Second, ReconcileInterval: 2 * time.Second,
		MaxSessions: 4096, MaxPending: 4096,
	}
	got := c
	got.Storage, got.Logger = nil, nil
	if got.Voters != want.Voters || got.HeartbeatTimeout != want.HeartbeatTimeout ||
		got.ElectionTimeout != want.ElectionTimeout || got.LeaderLeaseTimeout != want.LeaderLeaseTimeout ||
		got.CommitTimeout != want.CommitTimeout || got.SnapshotThreshold != want.SnapshotThreshold ||
		got.SnapshotInterval != want.SnapshotInterval || got.TrailingLogs != want.TrailingLogs ||
		got.PerformTimeout != want.PerformTimeout || got.ReconcileInterval != want.ReconcileInterval ||
		got.MaxSessions != want.MaxSessions || got.MaxPending != want.MaxPending {
		t.Fatalf("defaults = %+v\nwant %+v", got, want)
	}
	if c.Storage == nil || c.Logger == nil {
		t.Fatal("no default Storage or Logger")
	}
}

// ApplyBatch applies a batch as Apply would one entry at a time, in
// order: entries without an action only advance the applied index, a
// retried request is applied once (its recorded index and action are the
// answer), and an undecodable entry is skipped with an error.
func TestApplyBatch(t *testing.T) {
	cfg := counterConfig(t, nil, 1)
	cfg.setDefaults()
	s := &Store[counter, int]{cfg: cfg, log: cfg.Logger}
	f := newFSM(s)
	s.fsm = f
	cmd := func(index uint64, c string, q uint64, d int) *raft.Log {
		data, err := encodeEntry(&entry{C: c, Q: q, P: index}, d)
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
	}
	var seen []int
	f.subscribe(func(_ counter, a int, _ uint64) { seen = append(seen, a) })
	out := f.ApplyBatch([]*raft.Log{
		cmd(1, "", 0, 5),
		{Index: 2, Type: raft.LogConfiguration},
		cmd(3, "c", 1, 7),
		cmd(4, "c", 1, 7), // the same request, appended twice
		{Index: 5, Type: raft.LogCommand, Data: []byte{0xff}},
		cmd(6, "", 0, -2),
	})
	if len(out) != 6 {
		t.Fatalf("%d results for 6 entries", len(out))
	}
	for _, i := range []int{0, 1, 2, 5} {
		if out[i] != nil {
			t.Fatalf("result %d = %v, want nil", i, out[i])
		}
	}
	if d, ok := out[3].(*dupResult); !ok || d.index != 3 {
		t.Fatalf("result of the retry = %#v, want the first one's index 3", out[3])
	}
	if err, ok := out[4].(error); !ok || err == nil {
		t.Fatalf("result of the undecodable entry = %#v, want an error", out[4])
	}
	st, applied := f.committed()
	if st.N != 10 || applied != 6 || !slices.Equal(seen, []int{5, 7, -2}) {
		t.Fatalf("state %d applied %d actions seen %v, want 10, 6, [5 7 -2]", st.N, applied, seen)
	}
}

// A Perform whose own proposal has run does not go on running the
// proposals queued after it (under steady load it would never return to
// its caller): it leaves them to the drainer goroutine.
func TestDrainLeavesOthersToTheDrainer(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.stores[g.leader()]
	if _, err := l.Perform(ctxT(t), "add", 1); err != nil { // starts the waiter and drainer
		t.Fatal(err)
	}
	ranOn := make(chan string, 1)
	l.cfg.Methods["where"] = func(counter, []byte) (int, error) {
		buf := make([]byte, 64<<10)
		ranOn <- string(buf[:runtime.Stack(buf, false)])
		return 1, nil
	}
	own := &proposal[int]{}
	own.state.Store(propTaken)
	other := l.newProposal(ctxT(t), &performReq{M: "where", A: []byte{0xc0}})
	l.enqueue(other)
	l.drain(own)
	o := <-other.out
	if o.err != nil {
		t.Fatal(o.err)
	}
	if stack := <-ranOn; !strings.Contains(stack, "drainerLoop") {
		t.Fatalf("the queued proposal ran outside the drainer goroutine:\n%s", stack)
	}
}
