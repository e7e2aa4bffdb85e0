package gossip

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

func TestConvergenceMeetInsert(t *testing.T) {
	nodes := cluster(t, 4)
	extra := newNode(t, "x").start("ring")
	if err := nodes[2].r.Insert(ctx(t), extra.self(), 5, false); err != nil {
		t.Fatal(err)
	}
	all := append(nodes, extra)
	waitConverged(t, all, "n0", "n1", "n2", "n3", "x")
	for _, n := range all {
		if w := n.r.View().Weights()["x"]; w != 5 {
			t.Fatalf("%s: weight of x = %d, want 5", n.id(), w)
		}
	}
	nodes[0].waitEvent(EventInserted, "x")
	extra.waitEvent(EventInserted, "n0")
}

func TestConcurrentInsertsBothSurvive(t *testing.T) {
	nodes := cluster(t, 3)
	d := notp.Node{ID: "d", Host: "127.0.0.1", Port: 1}
	e := notp.Node{ID: "e", Host: "127.0.0.1", Port: 2}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = nodes[0].r.Insert(ctx(t), d, 0, false) }()
	go func() { defer wg.Done(); _ = nodes[2].r.Insert(ctx(t), e, 0, false) }()
	wg.Wait()
	waitConverged(t, nodes, "n0", "n1", "n2", "d", "e")
	for _, n := range nodes {
		if c := n.r.Clock(); c.Size() > 3 {
			t.Errorf("%s: clock %v has more actors than nodes that made changes", n.id(), c)
		}
	}
}

func TestRemoveNotifiesRemovedNode(t *testing.T) {
	nodes := cluster(t, 3)
	if err := nodes[0].r.Remove(ctx(t), nodes[2].self(), false); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, nodes[:2], "n0", "n1")
	ev := nodes[2].waitEvent(EventSelfRemoved, "n2")
	if ev.RingID != "ring" {
		t.Errorf("SelfRemoved ring id = %q", ev.RingID)
	}
	testutil.WaitFor(t, "n2 to fall back to a ring of its own", func() bool {
		return nodes[2].r.RingID() == "" && slices.Equal(ringIDs(nodes[2].r), []string{"n2"})
	})
	nodes[0].waitEvent(EventRemoved, "n2")
	nodes[1].waitEvent(EventRemoved, "n2")
}

// Leave then Join fully re-activates the ring (handler, memberlist, polls);
// notp's leave-then-join left the ring deaf.
func TestLeaveThenJoin(t *testing.T) {
	nodes := cluster(t, 3)
	n2 := nodes[2]
	if err := n2.r.Leave(ctx(t), false); err != nil {
		t.Fatal(err)
	}
	n2.waitEvent(EventLeft, "n2")
	if id := n2.r.RingID(); id != "" {
		t.Fatalf("ring id after Leave = %q", id)
	}
	if got := ringIDs(n2.r); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("ring after Leave = %v", got)
	}
	waitConverged(t, nodes[:2], "n0", "n1")
	if err := n2.r.Leave(ctx(t), false); !errors.Is(err, ErrNotInRing) {
		t.Fatalf("second Leave: %v, want ErrNotInRing", err)
	}

	if err := n2.r.Join("ring"); err != nil {
		t.Fatal(err)
	}
	if err := n2.r.Join("ring"); !errors.Is(err, ErrAlreadyInRing) ||
		!strings.Contains(err.Error(), "Node already belongs to ring 'ring'") {
		t.Fatalf("Join twice: %v", err)
	}
	if err := n2.r.Meet(ctx(t), nodes[0].self()); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, nodes, "n0", "n1", "n2")
	// Fully active: a change made on n2 reaches the others.
	y := notp.Node{ID: "y", Host: "127.0.0.1", Port: 3}
	if err := n2.r.Insert(ctx(t), y, 0, false); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, nodes, "n0", "n1", "n2", "y")
}

func TestDeadNodeEvent(t *testing.T) {
	nodes := cluster(t, 3)
	for _, n := range nodes[:2] {
		testutil.WaitFor(t, "n2 alive in memberlist", func() bool { return n.r.Health("n2") == HealthAlive })
	}
	nodes[2].close()
	for _, n := range nodes[:2] {
		n.waitEvent(EventDead, "n2")
		// memberlist may briefly see a refutation n2 sent while stopping.
		testutil.WaitFor(t, "n2 to stay dead", func() bool { return n.r.Health("n2") == HealthDead })
	}
	// Still in the ring: membership is admin-driven.
	if got := ringIDs(nodes[0].r); !slices.Contains(got, "n2") {
		t.Fatalf("n2 dropped from the ring: %v", got)
	}
	ms := nodes[0].r.Members()
	if len(ms) != 3 {
		t.Fatalf("Members = %v", ms)
	}
}

func TestRestartFromFlushFile(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{}
	var nodes []*tnode
	for i := range 3 {
		id := fmt.Sprintf("n%d", i)
		paths[id] = filepath.Join(dir, id+".ring")
		p := paths[id]
		nodes = append(nodes, newNode(t, id, func(c *Config) { c.FlushPath = p }).start("ring"))
	}
	for _, n := range nodes[1:] {
		if err := n.r.Meet(ctx(t), nodes[0].self()); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, nodes, "n0", "n1", "n2")
	old := nodes[2]
	old.close()

	// A change while n2 is down.
	y := notp.Node{ID: "y", Host: "127.0.0.1", Port: 3}
	if err := nodes[0].r.Insert(ctx(t), y, 0, false); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, nodes[:2], "n0", "n1", "n2", "y")

	self := old.self()
	var k *kernel.Kernel
	testutil.WaitFor(t, "port to be free again", func() bool {
		kk, err := kernel.New(kernel.Config{Node: self, Cookie: testCookie})
		if err != nil {
			t.Fatal(err)
		}
		if err := kk.Start(context.Background()); err != nil {
			return false
		}
		k = kk
		return true
	})
	re := newNodeOn(t, k, func(c *Config) { c.FlushPath = paths["n2"] })
	loaded, err := re.r.Load()
	if err != nil || !loaded {
		t.Fatalf("Load = %v, %v", loaded, err)
	}
	if got := ringIDs(re.r); !slices.Equal(got, []string{"n0", "n1", "n2"}) {
		t.Fatalf("loaded ring = %v", got)
	}
	re.start("")
	if id := re.r.RingID(); id != "ring" {
		t.Fatalf("ring id after restart = %q", id)
	}
	waitConverged(t, []*tnode{nodes[0], nodes[1], re}, "n0", "n1", "n2", "y")
	for _, n := range nodes[:2] {
		testutil.WaitFor(t, "n2 alive again", func() bool { return n.r.Health("n2") == HealthAlive })
	}
}

// restart closes old and starts a new node with the same ID, port and
// flush file, loads the file and starts it with the loaded ring id.
func restart(t *testing.T, old *tnode, path string, opts ...nodeOpt) *tnode {
	t.Helper()
	self := old.self()
	old.close()
	var k *kernel.Kernel
	testutil.WaitFor(t, "the port to be free again", func() bool {
		kk, err := kernel.New(kernel.Config{Node: self, Cookie: testCookie, ReconnectMax: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := kk.Start(context.Background()); err != nil {
			return false
		}
		k = kk
		return true
	})
	n := newNodeOn(t, k, append(opts, func(c *Config) { c.FlushPath = path })...)
	if loaded, err := n.r.Load(); err != nil || !loaded {
		t.Fatalf("Load = %v, %v", loaded, err)
	}
	return n.start("")
}

// A node removed while it was down comes back from its flush file as a
// zombie; its stale state is ignored and it learns its removal.
func TestZombieRestartLearnsRemoval(t *testing.T) {
	dir := t.TempDir()
	var nodes []*tnode
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("n%d", i))
		nodes = append(nodes, newNode(t, fmt.Sprintf("n%d", i), func(c *Config) { c.FlushPath = p }).start("ring"))
	}
	for _, n := range nodes[1:] {
		if err := n.r.Meet(ctx(t), nodes[0].self()); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, nodes, "n0", "n1", "n2")
	waitSettled(t, nodes)
	z := nodes[2]
	zself := z.self()
	z.close()
	if err := nodes[0].r.Remove(ctx(t), zself, true); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, nodes[:2], "n0", "n1")
	z = restart(t, z, filepath.Join(dir, "n2"))
	z.waitEvent(EventSelfRemoved, "n2")
	testutil.WaitFor(t, "the zombie to fall back to a ring of its own", func() bool {
		return z.r.RingID() == "" && slices.Equal(ringIDs(z.r), []string{"n2"})
	})
	waitConverged(t, nodes[:2], "n0", "n1")
}

// AutoRemoveDeadAfter removes a dead node, decided by the alive member with
// the lowest ID, so that only one member makes the removal.
func TestAutoRemoveDead(t *testing.T) {
	nodes := cluster(t, 3, func(c *Config) { c.AutoRemoveDeadAfter = 300 * time.Millisecond })
	for _, n := range nodes {
		testutil.WaitFor(t, "memberlist to see everyone", func() bool {
			return n.r.Health("n0") == HealthAlive && n.r.Health("n1") == HealthAlive && n.r.Health("n2") == HealthAlive
		})
	}
	nodes[2].close()
	waitConverged(t, nodes[:2], "n0", "n1")
	// n0 decides; n1 may too if memberlist briefly doubted n0 (harmless:
	// both write the same removal and the merge keeps one).
	testutil.WaitFor(t, "the removal to be counted", func() bool { return nodes[0].r.Stats().AutoRemoved == 1 })
	if n1 := nodes[1].r.Stats().AutoRemoved; n1 > 1 {
		t.Fatalf("n1 AutoRemoved %d", n1)
	}
}

// Different ring ids never merge: memberlist refuses the join.
func TestDifferentRingsNeverMerge(t *testing.T) {
	a := newNode(t, "a").start("r1")
	b := newNode(t, "b").start("r2")
	if err := a.r.Meet(ctx(t), b.self()); err == nil {
		t.Fatal("meeting a node of another ring succeeded")
	}
	if got := ringIDs(a.r); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("a's ring %v", got)
	}
	if got := ringIDs(b.r); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("b's ring %v", got)
	}
	if err := newNode(t, "c").start("").r.Meet(ctx(t), a.self()); !errors.Is(err, ErrNotInRing) {
		t.Fatalf("Meet outside a ring = %v", err)
	}
}

// Stop waits for every goroutine the Ring (and its memberlist) started.
func TestNoGoroutineLeak(t *testing.T) {
	testutil.CheckLeaks(t)
	a := newNode(t, "a").start("ring")
	b := newNode(t, "b").start("ring")
	if err := b.r.Meet(ctx(t), a.self()); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, []*tnode{a, b}, "a", "b")
	a.close()
	b.close()
}

// Concurrent admin operations and meets in every direction neither
// deadlock nor lose writes: every node ends with the same ring.
func TestConcurrentOperations(t *testing.T) {
	nodes := make([]*tnode, 4)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf("n%d", i)).start("ring")
	}
	var wg sync.WaitGroup
	for i, a := range nodes {
		for j, b := range nodes {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A meet may fail fast when the failure detector, slowed by
				// the race detector on a loaded machine, briefly reports its
				// peer down: that is the fail-fast contract, and the other
				// eleven meets still join every node. Anything else fails.
				if err := a.r.Meet(ctx(t), b.self()); err != nil && !errors.Is(err, kernel.ErrNodeDown) {
					t.Errorf("%s meets %s: %v", a.id(), b.id(), err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := notp.Node{ID: fmt.Sprintf("x%d", i), Host: "127.0.0.1", Port: 100 + i}
			if err := a.r.Insert(ctx(t), x, i+1, false); err != nil {
				t.Errorf("insert: %v", err)
			}
			if i%2 == 0 {
				if err := a.r.Remove(ctx(t), x, false); err != nil {
					t.Errorf("remove: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	waitConverged(t, nodes, "n0", "n1", "n2", "n3", "x1", "x3")
	waitSettled(t, nodes)
}

// A ring's transport counters are its own memberlist's, and they keep
// what earlier memberlists counted when the ring leaves and joins again
// (each join runs a new memberlist with a new transport).
func TestTransportStatsSurviveRejoin(t *testing.T) {
	nodes := cluster(t, 2)
	n0, n1 := nodes[0], nodes[1]
	// n1 met n0: its memberlist dialed n0 for the push/pull, which n0
	// accepted.
	s1 := n1.r.TransportStats()
	if s1.StreamsOut == 0 || s1.StreamBytesOut == 0 || n0.r.TransportStats().StreamsIn == 0 {
		t.Fatalf("after meet: n1 %+v, n0 %+v", s1, n0.r.TransportStats())
	}
	if tot := TransportTotals(); tot.StreamsOut < s1.StreamsOut+n0.r.TransportStats().StreamsOut {
		t.Fatalf("process totals %+v below the two rings' sums", tot)
	}
	if err := n1.r.Leave(ctx(t), false); err != nil {
		t.Fatal(err)
	}
	left := n1.r.TransportStats()
	if left.StreamsOut < s1.StreamsOut || left.PacketsOut < s1.PacketsOut {
		t.Fatalf("counters after Leave %+v fell below %+v", left, s1)
	}
	if err := n1.r.Join("ring"); err != nil {
		t.Fatal(err)
	}
	if err := n1.r.Meet(ctx(t), n0.self()); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, nodes, "n0", "n1")
	if again := n1.r.TransportStats(); again.StreamsOut <= left.StreamsOut || again.PacketsOut < left.PacketsOut {
		t.Fatalf("counters after the second meet %+v, want more streams out than %+v", again, left)
	}
}
