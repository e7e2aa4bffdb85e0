package gossip

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/internal/testutil/mltest"
	"github.com/notp-go/notp/kernel"
)

const testCookie = "gossip-test-cookie"

type tnode struct {
	t    *testing.T
	k    *kernel.Kernel
	r    *Ring
	cfg  Config
	evs  <-chan Event
	mu   sync.Mutex
	seen []Event
}

type nodeOpt func(*Config)

// startKernel starts a kernel for id on 127.0.0.1 (port 0 = any).
func startKernel(t *testing.T, id string, port int) *kernel.Kernel {
	t.Helper()
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1", Port: port},
		Cookie: testCookie, ReconnectMax: 200 * time.Millisecond, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}

// newNode starts a kernel and a Ring (not yet started).
func newNode(t *testing.T, id string, opts ...nodeOpt) *tnode {
	t.Helper()
	k := startKernel(t, id, 0)
	return newNodeOn(t, k, opts...)
}

func newNodeOn(t *testing.T, k *kernel.Kernel, opts ...nodeOpt) *tnode {
	t.Helper()
	cfg := Config{Interval: 50 * time.Millisecond,
		FlushInterval: 50 * time.Millisecond, Memberlist: mltest.FastConfig(), Logger: testutil.Logger(t),
		CallTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &tnode{t: t, k: k, r: r, cfg: cfg}
	n.evs, _ = r.Subscribe(4096)
	t.Cleanup(func() { n.close() })
	return n
}

func (n *tnode) start(ringID string) *tnode {
	n.t.Helper()
	if err := n.r.Start(context.Background(), ringID); err != nil {
		n.t.Fatalf("%s: Start: %v", n.id(), err)
	}
	return n
}

func (n *tnode) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.r.Stop(ctx)
	_ = n.k.Close()
}

func (n *tnode) id() string            { return n.k.Self().ID }
func (n *tnode) self() notp.Node       { return n.k.Self() }
func ctx(t *testing.T) context.Context { return t.Context() }

// cluster starts n nodes "n0".."n{n-1}" in ring "ring" and meets them all
// through n0.
func cluster(t *testing.T, count int, opts ...nodeOpt) []*tnode {
	t.Helper()
	nodes := make([]*tnode, count)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf("n%d", i), opts...).start("ring")
	}
	for _, n := range nodes[1:] {
		if err := n.r.Meet(ctx(t), nodes[0].self()); err != nil {
			t.Fatalf("%s meets n0: %v", n.id(), err)
		}
	}
	waitConverged(t, nodes, ids(nodes)...)
	waitSettled(t, nodes)
	return nodes
}

// waitSettled waits until the nodes hold identical entries and every join
// was processed (no version-0 placeholders are left).
func waitSettled(t *testing.T, nodes []*tnode) {
	t.Helper()
	testutil.WaitFor(t, "states to settle", func() bool {
		var first []codec.Entry
		for i, n := range nodes {
			n.r.mu.Lock()
			es := n.r.st.sortedEntries()
			n.r.mu.Unlock()
			if slices.ContainsFunc(es, func(e codec.Entry) bool { return e.Version == 0 }) {
				return false
			}
			if i == 0 {
				first = es
			} else if !slices.Equal(es, first) {
				return false
			}
		}
		return true
	})
}

func ids(nodes []*tnode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.id())
	}
	return out
}

func ringIDs(r *Ring) []string {
	var out []string
	for _, n := range r.View().Nodes() {
		out = append(out, n.ID)
	}
	slices.Sort(out)
	return out
}

// waitConverged waits until every node's ring holds exactly want and all
// rings are equal.
func waitConverged(t *testing.T, nodes []*tnode, want ...string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	defer func() {
		if t.Failed() {
			for _, n := range nodes {
				n.r.mu.Lock()
				t.Logf("%s: ring %q entries %v clock %v", n.id(), n.r.ringID, n.r.st.sortedEntries(), n.r.st.clock)
				n.r.mu.Unlock()
			}
		}
	}()
	testutil.WaitFor(t, fmt.Sprintf("rings to converge on %v", want), func() bool {
		for _, n := range nodes {
			if !slices.Equal(ringIDs(n.r), want) {
				return false
			}
			if !n.r.View().Equal(nodes[0].r.View()) {
				return false
			}
		}
		return true
	})
}

// waitEvent waits for an event of kind whose nodes include id ("" = any).
func (n *tnode) waitEvent(kind EventKind, id string) Event {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	match := func(ev Event) bool {
		if ev.Kind != kind {
			return false
		}
		return id == "" || slices.ContainsFunc(ev.Nodes, func(x notp.Node) bool { return x.ID == id })
	}
	for _, ev := range n.seen {
		if match(ev) {
			return ev
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-n.evs:
			if !ok {
				n.t.Fatalf("%s: event channel closed", n.id())
			}
			n.seen = append(n.seen, ev)
			if match(ev) {
				return ev
			}
		case <-timeout:
			n.t.Fatalf("%s: no %v event for %q; saw %v", n.id(), kind, id, kindsOf(n.seen))
		}
	}
}

func kindsOf(evs []Event) []string {
	var out []string
	for _, e := range evs {
		var ns []string
		for _, n := range e.Nodes {
			ns = append(ns, n.ID)
		}
		out = append(out, fmt.Sprintf("%v%v", e.Kind, ns))
	}
	return out
}
