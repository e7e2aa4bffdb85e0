package dlm_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dlm"
)

// Two real nodes, foo and bar, in one ring: with two replicas every lock
// lives on both, and a quorum is both.
func TestTwoNodeIntegration(t *testing.T) {
	_, ds := form(t, clustertest.Config{Nodes: 2}, dlm.Config{Replicas: 2, Retries: dlm.NoRetries}, false)
	foo, bar := ds.At(0), ds.At(1)
	ctx := clustertest.Context(t, 30*time.Second)
	const ttl = 10 * time.Second
	free := func(what, id string) {
		t.Helper()
		l, err := bar.WLock(ctx, id, "probe", ttl)
		if err != nil {
			t.Fatalf("%s: %s is still held on a replica: %v", what, id, err)
		}
		if err := bar.WUnlock(ctx, id, "probe"); err != nil {
			t.Fatal(err)
		}
		_ = l
	}

	t.Run("write lock granted on both replicas and released by wunlock", func(t *testing.T) {
		l, err := foo.WLock(ctx, "w1", "alice", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Nodes) != 2 || l.Token == 0 {
			t.Fatalf("lock %+v", l)
		}
		if err := foo.WUnlock(ctx, "w1", "alice"); err != nil {
			t.Fatal(err)
		}
		free("after wunlock", "w1")
	})
	t.Run("second write lock on a held id fails", func(t *testing.T) {
		if _, err := foo.WLock(ctx, "w2", "alice", ttl); err != nil {
			t.Fatal(err)
		}
		_, err := bar.WLock(ctx, "w2", "bob", ttl)
		if !errors.Is(err, dlm.ErrRetriesExhausted) {
			t.Fatalf("second wlock: %v", err)
		}
		foo.WUnlock(ctx, "w2", "alice")
	})
	t.Run("read lock on a write-locked id fails", func(t *testing.T) {
		if _, err := foo.WLock(ctx, "w3", "alice", ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := bar.RLock(ctx, "w3", "bob", ttl); !errors.Is(err, dlm.ErrRetriesExhausted) {
			t.Fatalf("rlock: %v", err)
		}
		foo.WUnlock(ctx, "w3", "alice")
	})
	t.Run("read lock granted on both replicas and released", func(t *testing.T) {
		l, err := foo.RLock(ctx, "r1", "alice", ttl)
		if err != nil || len(l.Nodes) != 2 {
			t.Fatalf("%v %+v", err, l)
		}
		if err := foo.RUnlock(ctx, "r1", "alice"); err != nil {
			t.Fatal(err)
		}
		free("after runlock", "r1")
	})
	t.Run("write lock on a read-locked id fails", func(t *testing.T) {
		if _, err := foo.RLock(ctx, "r2", "alice", ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := bar.WLock(ctx, "r2", "bob", ttl); !errors.Is(err, dlm.ErrRetriesExhausted) {
			t.Fatalf("wlock: %v", err)
		}
		foo.RUnlock(ctx, "r2", "alice")
	})
	t.Run("two read holders coexist and unlocking each empties both replicas", func(t *testing.T) {
		if _, err := foo.RLock(ctx, "r3", "alice", ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := bar.RLock(ctx, "r3", "bob", ttl); err != nil {
			t.Fatal(err)
		}
		if err := foo.RUnlock(ctx, "r3", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := bar.WLock(ctx, "r3", "probe", ttl); err == nil {
			t.Fatal("write lock granted while bob still reads")
		}
		if err := bar.RUnlock(ctx, "r3", "bob"); err != nil {
			t.Fatal(err)
		}
		free("after both runlocks", "r3")
	})
}

// model checks what the locks promise: at most one writer, or readers
// only, per ID at any time, and write tokens that grow in the order the
// writers got in.
type model struct {
	mu         sync.Mutex
	writer     map[string]string
	readers    map[string]int
	lastToken  map[string]uint64
	violations []string
	writes     int
}

func newModel() *model {
	return &model{writer: map[string]string{}, readers: map[string]int{}, lastToken: map[string]uint64{}}
}

func (m *model) enterWrite(l dlm.Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.writer[l.ID]; w != "" {
		m.violations = append(m.violations, fmt.Sprintf("%s: %s got the write lock while %s held it", l.ID, l.Holder, w))
	}
	if m.readers[l.ID] > 0 {
		m.violations = append(m.violations, fmt.Sprintf("%s: %s got the write lock under %d readers", l.ID, l.Holder, m.readers[l.ID]))
	}
	if l.Token <= m.lastToken[l.ID] {
		m.violations = append(m.violations, fmt.Sprintf("%s: token %d after %d", l.ID, l.Token, m.lastToken[l.ID]))
	}
	m.lastToken[l.ID] = l.Token
	m.writer[l.ID] = l.Holder
	m.writes++
}

func (m *model) exitWrite(l dlm.Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writer[l.ID] = ""
}

func (m *model) enterRead(l dlm.Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.writer[l.ID]; w != "" {
		m.violations = append(m.violations, fmt.Sprintf("%s: %s got a read lock while %s wrote", l.ID, l.Holder, w))
	}
	m.readers[l.ID]++
}

func (m *model) exitRead(l dlm.Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readers[l.ID]--
}

func (m *model) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

func (m *model) check(t *testing.T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.violations {
		t.Error(v)
	}
}

// contend runs writers and readers on ids through the given DLMs until
// stop is closed. A section is short next to the TTL, and one that would
// outlive its lock's validity is a test failure.
func contend(t *testing.T, m *model, stop <-chan struct{}, ds func(i int) *dlm.DLM, writers, readers int, ids []string, ttl time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers + readers {
		write := w < writers
		wg.Go(func() {
			holder := fmt.Sprintf("h%d", w)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(w+i)%len(ids)]
				d := ds(w + i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				var l dlm.Lock
				var err error
				if write {
					l, err = d.WLock(ctx, id, holder, ttl)
				} else {
					l, err = d.RLock(ctx, id, holder, ttl)
				}
				cancel()
				if err != nil {
					continue // refused until the deadline, or the node is down: try again
				}
				start := time.Now()
				if write {
					m.enterWrite(l)
					time.Sleep(time.Millisecond) // the work the lock guards
					m.exitWrite(l)
				} else {
					m.enterRead(l)
					time.Sleep(time.Millisecond)
					m.exitRead(l)
				}
				if el := time.Since(start); el >= l.Validity {
					t.Errorf("section took %v, past the lock's validity %v", el, l.Validity)
				}
				uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
				if write {
					_ = d.WUnlock(uctx, id, holder) // an unreached replica lets the TTL release it
				} else {
					_ = d.RUnlock(uctx, id, holder)
				}
				ucancel()
			}
		})
	}
	return &wg
}

// Many holders on a and b contend for two IDs replicated on all three
// nodes while c, one replica of every lock, stops and restarts from its
// directory: no two writers and no writer and reader ever overlap, and
// write tokens only grow.
func TestMutualExclusionAndTokenOrderWhileAReplicaRestarts(t *testing.T) {
	forEachClock(t, testMutualExclusionWhileAReplicaRestarts)
}

// clocks are the two clocks the model tests run under. On the real clock
// a token's time floor alone keeps tokens growing, so a broken commit or
// recording step goes unseen; 60 years in the past the floor is 0 and only
// the tokens the replicas recorded order them, so with that step broken
// the model sees a token that did not grow from the second write on.
var clocks = []struct {
	name string
	now  func() time.Time
}{
	{"before1970", func() time.Time { return time.Now().AddDate(-60, 0, 0) }},
	{"realclock", time.Now},
}

// forEachClock runs test as a subtest under each of clocks.
func forEachClock(t *testing.T, test func(t *testing.T, now func() time.Time)) {
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) { test(t, c.now) })
	}
}

func testMutualExclusionWhileAReplicaRestarts(t *testing.T, now func() time.Time) {
	cfg := dlm.Config{Replicas: 3, MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond, Now: now}
	c, ds := form(t, clustertest.Config{Nodes: 3, Faults: true, Seed: 2}, cfg, false)
	m := newModel()
	stop := make(chan struct{})
	wg := contend(t, m, stop, func(i int) *dlm.DLM { return ds.At(i % 2) }, 6, 2, []string{"job-0", "job-1"}, 5*time.Second)
	defer func() { close(stop); wg.Wait(); m.check(t) }()

	clustertest.WaitFor(t, "writes with all replicas up", func() bool { return m.count() >= 20 })
	c.Stop(2)
	before := m.count()
	clustertest.WaitFor(t, "writes with c down", func() bool { return m.count() >= before+20 })
	c.Restart(2)
	if err := c.WaitConverged(clustertest.Context(t, clustertest.WaitTimeout)); err != nil {
		t.Fatalf("c back: %v", err)
	}
	before = m.count()
	clustertest.WaitFor(t, "writes after c restarted", func() bool { return m.count() >= before+20 })
	t.Logf("%d write sections", m.count())
}

// The fencing guarantee against a model while the network splits one node
// away and nodes crash and restart from their directories: writers on
// every node (those cut off simply fail), write tokens strictly growing in
// the order writers got in, never two writers at once.
func TestFencingTokensUnderPartitionsAndCrashes(t *testing.T) {
	forEachClock(t, testFencingTokensUnderPartitionsAndCrashes)
}

func testFencingTokensUnderPartitionsAndCrashes(t *testing.T, now func() time.Time) {
	cfg := dlm.Config{Replicas: 3, MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond, Now: now}
	cc := clustertest.Config{Nodes: 3, Faults: true, Seed: 3, Loss: 0.02, Duplicate: 0.02, Reorder: 0.05}
	c, ds := form(t, cc, cfg, false)
	m := newModel()
	stop := make(chan struct{})
	wg := contend(t, m, stop, func(i int) *dlm.DLM { return ds.At(i % 3) }, 6, 0, []string{"fenced"}, time.Second)
	defer func() { close(stop); wg.Wait(); m.check(t) }()

	progress := func(what string) {
		t.Helper()
		before := m.count()
		clustertest.WaitFor(t, what, func() bool { return m.count() >= before+10 })
	}
	progress("writes on the whole cluster")
	for round, victim := range []int{0, 1, 2, 0} {
		id := c.Node(victim).Self().ID
		if round%2 == 0 {
			c.Partition([]int{victim}, []int{(victim + 1) % 3, (victim + 2) % 3})
			progress(fmt.Sprintf("round %d: writes with %s cut off", round, id))
			c.Heal()
		} else {
			c.Stop(victim)
			progress(fmt.Sprintf("round %d: writes with %s down", round, id))
			c.Restart(victim)
		}
		if err := c.WaitConverged(clustertest.Context(t, clustertest.WaitTimeout)); err != nil {
			t.Fatalf("round %d: all alive: %v", round, err)
		}
		progress(fmt.Sprintf("round %d: writes after %s is back", round, id))
	}
	t.Logf("%d write sections", m.count())
}
