package conflux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/vmihailenco/msgpack/v5"
)

const testCookie = "conflux test cookie 0123456789abcdef"

func testLogger(t testing.TB) *slog.Logger { return clustertest.Logger(t) }

// startNode starts a cluster node on loopback in ring "ring".
func startNode(t testing.TB, id string, opt func(*cluster.Config)) *cluster.Node {
	t.Helper()
	cfg := cluster.Config{
		Node:   notp.Node{ID: id, Host: "127.0.0.1"},
		Cookie: testCookie,
		Gossip: gossip.Config{Interval: 100 * time.Millisecond, Memberlist: clustertest.FastMemberlist()},
		Logger: testLogger(t),
	}
	if opt != nil {
		opt(&cfg)
	}
	n, err := cluster.New(cfg)
	if err != nil {
		t.Fatalf("cluster.New(%s): %v", id, err)
	}
	if err := n.Start(context.Background(), "ring"); err != nil {
		t.Fatalf("Start(%s): %v", id, err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

// meet joins b's ring to a's and waits until both see each other.
func meet(t testing.TB, a, b *cluster.Node) {
	t.Helper()
	if err := a.Ring().Meet(ctxT(t), b.Self()); err != nil {
		t.Fatalf("meet %s-%s: %v", a.Self().ID, b.Self().ID, err)
	}
	waitFor(t, "ring "+a.Self().ID+"+"+b.Self().ID, func() bool {
		return inRing(a, b.Self().ID) && inRing(b, a.Self().ID)
	})
}

func inRing(n *cluster.Node, id string) bool {
	for _, m := range n.Ring().Members() {
		if m.Node.ID == id {
			return true
		}
	}
	return false
}

func ctxT(t testing.TB) context.Context { return clustertest.Context(t, 20*time.Second) }

// waitFor polls cond until it holds or 20 s pass (elections under -race on
// a loaded machine take longer than clustertest.WaitFor's budget).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitWithin(t, 20*time.Second, what, cond)
}

// The test state machine: a counter with a history of its deltas.
type counter struct {
	N   int   `msgpack:"n"`
	Log []int `msgpack:"l"`
}

var errNegative = errors.New("counter would go negative")

func reduceCounter(s counter, d int) counter {
	return counter{N: s.N + d, Log: append(slices.Clip(s.Log), d)}
}

func counterMethods() map[string]Method[counter, int] {
	return map[string]Method[counter, int]{
		"add": func(s counter, args []byte) (int, error) {
			var d int
			if err := msgpack.Unmarshal(args, &d); err != nil {
				return 0, err
			}
			if s.N+d < 0 {
				return 0, fmt.Errorf("add %d to %d: %w", d, s.N, errNegative)
			}
			return d, nil
		},
		"noop": func(counter, []byte) (int, error) { return 0, ErrNoAction },
	}
}

func counterConfig(t testing.TB, storage Storage, expect int) Config[counter, int] {
	return Config[counter, int]{
		Name:               "counter",
		Methods:            counterMethods(),
		Reduce:             reduceCounter,
		Storage:            storage,
		BootstrapExpect:    expect,
		Errors:             []error{errNegative},
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ReconcileInterval:  200 * time.Millisecond,
		Logger:             testLogger(t),
	}
}

// group is a test cluster: nodes in one ring, each running a store.
type group struct {
	t      testing.TB
	nodes  []*cluster.Node
	stores []*Store[counter, int]
}

// newGroup starts n nodes in one ring and a counter store on each, with
// BootstrapExpect n, and waits for a leader.
func newGroup(t testing.TB, n int, storage func(i int) Storage) *group {
	t.Helper()
	g := &group{t: t}
	for i := range n {
		g.nodes = append(g.nodes, startNode(t, fmt.Sprintf("n%d", i), nil))
		if i > 0 {
			meet(t, g.nodes[0], g.nodes[i])
		}
	}
	for i, nd := range g.nodes {
		var st Storage
		if storage != nil {
			st = storage(i)
		}
		g.stores = append(g.stores, g.startStore(nd, counterConfig(t, st, n)))
	}
	g.leader()
	return g
}

func (g *group) startStore(nd *cluster.Node, cfg Config[counter, int]) *Store[counter, int] {
	g.t.Helper()
	s, err := New(nd, cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := s.Start(ctxT(g.t)); err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

// leader waits until the running stores agree on a leader and returns
// its index.
func (g *group) leader() int {
	g.t.Helper()
	at := -1
	waitFor(g.t, "a leader", func() bool {
		at = -1
		var id string
		for i, s := range g.stores {
			if s == nil || s.isStopped() {
				continue
			}
			l, ok := s.Leader()
			if !ok || (id != "" && l.ID != id) {
				return false
			}
			id = l.ID
			if g.nodes[i].Self().ID == id && s.raft.State().String() == "Leader" {
				at = i
			}
		}
		return at >= 0
	})
	return at
}

func (s *Store[S, A]) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}
