package cluster_test

// Partition scenarios: five nodes in one process, each on its own loopback
// address of a fault-injecting network (internal/faultnet) that splits
// them, cuts their connections, loses, duplicates and reorders their
// failure detector's datagrams, and heals. Every wait polls a condition
// with a deadline.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/faultnet"
	"github.com/notp-go/notp/kernel"
)

// nextHost hands each fault node of the package's tests its own loopback
// address, so tests never share an address and a node restarted within a
// test keeps its own.
var nextHost atomic.Int32

func init() { nextHost.Store(20) }

// faultNode is a node on a faultnet host; start builds it anew on the
// same address and flush file.
type faultNode struct {
	id    string
	h     *faultnet.Host
	flush string
	ml    func() *memberlist.Config // nil = fastMemberlist
	// rc is the reconnect loop's config; zero = fastReconnect.
	rc gossip.ReconnectConfig
	n  *cluster.Node
}

// newFaultNet returns a network with mild datagram faults, closed at
// cleanup (after the nodes, which are stopped first).
func newFaultNet(t *testing.T, seed uint64) *faultnet.Network {
	t.Helper()
	fn := faultnet.New(seed)
	t.Cleanup(func() { fn.Close() })
	if err := fn.SetPacketFaults(faultnet.PacketFaults{Loss: 0.02, Duplicate: 0.02, Reorder: 0.05}); err != nil {
		t.Fatal(err)
	}
	return fn
}

// startFault starts node id on a new host of fn, with a flush file.
func startFault(t *testing.T, fn *faultnet.Network, id string) *faultNode {
	t.Helper()
	return startFaultML(t, fn, id, nil)
}

// startFaultML is startFault with memberlist's config from ml.
func startFaultML(t *testing.T, fn *faultnet.Network, id string, ml func() *memberlist.Config) *faultNode {
	t.Helper()
	h, err := fn.Host(faultnet.Loopback(int(nextHost.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	fnode := &faultNode{id: id, h: h, flush: t.TempDir() + "/" + id + ".ring", ml: ml}
	fnode.start(t, 0)
	return fnode
}

func (f *faultNode) start(t *testing.T, port int) {
	t.Helper()
	n := f.build(t, port)
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.Start(ctxT(t), "ring"); err != nil {
		t.Fatalf("Start(%s): %v", f.id, err)
	}
	f.n = n
}

func (f *faultNode) memberlist() *memberlist.Config {
	if f.ml != nil {
		return f.ml()
	}
	return fastMemberlist()
}

// fastReconnect retries dead members within a second or two, so a heal
// shows within the tests' deadlines.
var fastReconnect = gossip.ReconnectConfig{First: 300 * time.Millisecond, Interval: 2 * time.Second}

func (f *faultNode) reconnect() gossip.ReconnectConfig {
	if f.rc == (gossip.ReconnectConfig{}) {
		return fastReconnect
	}
	return f.rc
}

// build returns the node, not started; the caller stops it.
func (f *faultNode) build(t *testing.T, port int) *cluster.Node {
	t.Helper()
	n, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: f.id, Host: f.h.Addr().String(), Port: port},
		Cookie: testCookie,
		Gossip: gossip.Config{
			FlushPath:     f.flush,
			FlushInterval: 20 * time.Millisecond,
			Interval:      100 * time.Millisecond,
			Memberlist:    f.memberlist(),
			Reconnect:     f.reconnect(),
			ListenPacket:  f.h.ListenPacket,
		},
		// A healed link reconnects within 200 ms instead of waiting out
		// a backoff grown to seconds during the partition.
		Kernel: kernel.Config{Listen: f.h.Listen, Dial: f.h.Dial, ReconnectMax: 200 * time.Millisecond},
		Logger: logger(t),
	})
	if err != nil {
		t.Fatalf("cluster.New(%s): %v", f.id, err)
	}
	return n
}

// fiveNodes starts a..e on fn and forms one ring, all alive.
func fiveNodes(t *testing.T, fn *faultnet.Network) []*faultNode {
	t.Helper()
	return fiveNodesML(t, fn, nil)
}

// fiveNodesML is fiveNodes with memberlist's config from ml.
func fiveNodesML(t *testing.T, fn *faultnet.Network, ml func() *memberlist.Config) []*faultNode {
	t.Helper()
	var fs []*faultNode
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		fs = append(fs, startFaultML(t, fn, id, ml))
	}
	for _, f := range fs[1:] {
		if err := fs[0].n.Ring().Meet(ctxT(t), f.n.Self()); err != nil {
			t.Fatalf("meet %s: %v", f.id, err)
		}
	}
	waitFor(t, "five-node ring", func() bool { return agree(nodesOf(fs), "a", "b", "c", "d", "e") })
	for _, f := range fs {
		waitFor(t, "all alive on "+f.id, func() bool { return allAlive(f.n, 5) })
	}
	return fs
}

func nodesOf(fs []*faultNode) []*cluster.Node {
	var ns []*cluster.Node
	for _, f := range fs {
		ns = append(ns, f.n)
	}
	return ns
}

func addrsOf(fs ...*faultNode) []netip.Addr {
	var as []netip.Addr
	for _, f := range fs {
		as = append(as, f.h.Addr())
	}
	return as
}

// clockKey is a clock's counts in id order.
func clockKey(n *cluster.Node) string {
	var parts []string
	for id, e := range n.Ring().Clock().All() {
		parts = append(parts, fmt.Sprintf("%s:%d", id, e.Count))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// agree reports whether every node's ring holds exactly want (ids), with
// equal tokens, addresses and weights, the same ring id and equal clocks:
// the states have converged, not only the rings.
func agree(ns []*cluster.Node, want ...string) bool {
	if !converged(ns, want...) {
		return false
	}
	first := clockKey(ns[0])
	for _, n := range ns[1:] {
		if clockKey(n) != first {
			return false
		}
	}
	return true
}

// runningAlive reports whether n's failure detector sees every node of fs
// alive (the ring may hold virtual nodes too, which never are).
func runningAlive(n *cluster.Node, fs []*faultNode) bool {
	for _, f := range fs {
		if n.Ring().Health(f.id) != gossip.HealthAlive {
			return false
		}
	}
	return true
}

// virtual returns a ring entry for a node that does not run (nothing
// listens at its address; dials to it are refused).
func virtual(id string, port int) notp.Node {
	return notp.Node{ID: id, Host: "127.0.0.254", Port: port}
}

// received sums the ring messages the nodes have received.
func received(ns []*cluster.Node) uint64 {
	var sum uint64
	for _, n := range ns {
		sum += n.Ring().Stats().MessagesReceived
	}
	return sum
}

// 2|3 split with concurrent inserts and removes on both sides: once healed
// every ring is equal and holds every change of both sides.
func TestPartitionConcurrentChangesMergeOnHeal(t *testing.T) {
	fn := newFaultNet(t, 1)
	fs := fiveNodes(t, fn)
	all := nodesOf(fs)
	a := all[0]
	// Virtual nodes each side will remove.
	if err := a.Ring().MInsert(ctxT(t), []notp.Node{virtual("v1", 1), virtual("v2", 2), virtual("v3", 3)}, 0, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1..v3 everywhere", func() bool { return agree(all, "a", "b", "c", "d", "e", "v1", "v2", "v3") })

	fn.Partition(addrsOf(fs[:2]...), addrsOf(fs[2:]...))
	// Every node inserts two nodes of its own while its side removes a
	// virtual node (v3 on both sides), all at once.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 2 {
				x := virtual(fmt.Sprintf("%s-x%d", f.id, j), 100+10*i+j)
				if err := f.n.Ring().Insert(ctxT(t), x, 2+j, false); err != nil {
					errs <- fmt.Errorf("insert %s on %s: %w", x.ID, f.id, err)
				}
			}
		}()
	}
	for _, rm := range []struct {
		on  *faultNode
		ids []string
	}{{fs[1], []string{"v1", "v3"}}, {fs[3], []string{"v2", "v3"}}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range rm.ids {
				n, _ := rm.on.n.Ring().View().Get(id)
				if err := rm.on.n.Ring().Remove(ctxT(t), n, true); err != nil {
					errs <- fmt.Errorf("remove %s on %s: %w", id, rm.on.id, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	left := []string{"a", "b", "a-x0", "a-x1", "b-x0", "b-x1", "c", "d", "e", "v2"}
	right := []string{"a", "b", "c", "d", "e", "c-x0", "c-x1", "d-x0", "d-x1", "e-x0", "e-x1", "v1"}
	waitFor(t, "the 2-side agreeing on its changes", func() bool { return agree(all[:2], left...) })
	waitFor(t, "the 3-side agreeing on its changes", func() bool { return agree(all[2:], right...) })
	if s := fn.Stats(); s.ConnsCut == 0 {
		t.Fatalf("the partition cut no connection of the full mesh: %+v", s)
	}

	fn.Heal()
	want := []string{"a", "b", "c", "d", "e", "a-x0", "a-x1", "b-x0", "b-x1", "c-x0", "c-x1", "d-x0", "d-x1", "e-x0", "e-x1"}
	waitFor(t, "every ring equal after the heal", func() bool { return agree(all, want...) })
	for _, f := range fs {
		w := f.n.Ring().View().Weights()
		for _, id := range []string{"a-x0", "a-x1", "b-x0", "b-x1", "c-x0", "c-x1", "d-x0", "d-x1", "e-x0", "e-x1"} {
			if got, wantW := w[id], 2+int(id[len(id)-1]-'0'); got != wantW {
				t.Fatalf("weight of %s on %s = %d, want %d", id, f.id, got, wantW)
			}
		}
	}
	for _, f := range fs {
		waitFor(t, "a..e alive after the heal on "+f.id, func() bool { return runningAlive(f.n, fs) })
	}
}

// A node removed by one side while it keeps running on the other side
// stays removed after the heal: it learns of its removal and no state it
// or its side gossips brings it back.
func TestPartitionRemovedNodeStaysRemovedAfterHeal(t *testing.T) {
	fn := newFaultNet(t, 2)
	fs := fiveNodes(t, fn)
	all := nodesOf(fs)
	b := fs[1]
	fn.Partition(addrsOf(fs[:2]...), addrsOf(fs[2:]...))
	if err := fs[2].n.Ring().Remove(ctxT(t), b.n.Self(), true); err != nil {
		t.Fatalf("remove b on c: %v", err)
	}
	// Meanwhile b and a go on changing the ring on their side.
	if err := b.n.Ring().Insert(ctxT(t), virtual("b-x", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := fs[0].n.Ring().Insert(ctxT(t), virtual("a-x", 2), 0, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 3-side without b", func() bool { return agree(all[2:], "a", "c", "d", "e") })
	waitFor(t, "the 2-side with b's and a's inserts", func() bool {
		return agree(all[:2], "a", "b", "c", "d", "e", "a-x", "b-x")
	})

	fn.Heal()
	rest := []*cluster.Node{all[0], all[2], all[3], all[4]}
	want := []string{"a", "c", "d", "e", "a-x", "b-x"}
	waitFor(t, "the four agreeing without b", func() bool { return agree(rest, want...) })
	waitFor(t, "b out of the ring", func() bool { return slices.Equal(ringIDs(b.n), []string{"b"}) })
	// It must stay so while gossip goes on: let every remaining node
	// receive a good number of further ring messages (polls, pushes).
	base := received(rest)
	waitFor(t, "more gossip rounds", func() bool {
		if !agree(rest, want...) {
			t.Fatalf("the four rings changed after converging: %v / %v / %v / %v",
				ringIDs(rest[0]), ringIDs(rest[1]), ringIDs(rest[2]), ringIDs(rest[3]))
		}
		return received(rest) >= base+40
	})
	if !slices.Equal(ringIDs(b.n), []string{"b"}) {
		t.Fatalf("removed b is back in a ring: %v", ringIDs(b.n))
	}
}

// A node stopped and restarted from its flush file in the middle of a
// partition rejoins its side, catches up with what its side did while it
// was down, and after the heal every ring holds every change.
func TestPartitionRestartFromFlushFileMidPartition(t *testing.T) {
	fn := newFaultNet(t, 3)
	fs := fiveNodes(t, fn)
	e := fs[4]
	fn.Partition(addrsOf(fs[:2]...), addrsOf(fs[2:]...))
	if err := e.n.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := fs[2].n.Ring().Insert(ctxT(t), virtual("c-x", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := fs[0].n.Ring().Insert(ctxT(t), virtual("a-x", 2), 0, false); err != nil {
		t.Fatal(err)
	}
	port := e.n.Self().Port
	e.start(t, port)
	if got := e.n.Self().Port; got != port {
		t.Fatalf("restarted on port %d, want %d", got, port)
	}
	side := []*cluster.Node{fs[2].n, fs[3].n, e.n}
	waitFor(t, "restarted e catching up with its side", func() bool {
		return agree(side, "a", "b", "c", "d", "e", "c-x")
	})
	if got := ringIDs(fs[0].n); slices.Contains(got, "c-x") || !slices.Contains(got, "a-x") {
		t.Fatalf("a's ring %v across the partition: want a-x and not c-x", got)
	}

	fn.Heal()
	all := nodesOf(fs)
	waitFor(t, "every ring equal after the heal", func() bool {
		return agree(all, "a", "b", "c", "d", "e", "a-x", "c-x")
	})
	for _, f := range fs {
		waitFor(t, "a..e alive after the heal on "+f.id, func() bool { return runningAlive(f.n, fs) })
	}
}

// An asymmetric partition (a cannot reach b, b still reaches a) stops
// every stream between the two and a's datagrams to b; changes made on
// both of them still reach everyone through the other nodes, and once the
// block is lifted a and b see each other alive again.
func TestAsymmetricPartitionChangesSpreadAround(t *testing.T) {
	fn := newFaultNet(t, 4)
	fn.SetStreamMode(faultnet.Blackhole)
	fs := fiveNodes(t, fn)
	all := nodesOf(fs)
	a, b := fs[0], fs[1]
	fn.Block(a.h.Addr(), b.h.Addr())
	if err := a.n.Ring().Insert(ctxT(t), virtual("a-x", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := b.n.Ring().Insert(ctxT(t), virtual("b-x", 2), 0, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both inserts everywhere, around the block", func() bool {
		return agree(all, "a", "b", "c", "d", "e", "a-x", "b-x")
	})
	if a.n.Kernel().Connected("b") || b.n.Kernel().Connected("a") {
		t.Fatal("a and b connected across the block")
	}
	fn.Unblock(a.h.Addr(), b.h.Addr())
	waitFor(t, "a and b linked again", func() bool { return a.n.Kernel().Connected("b") && b.n.Kernel().Connected("a") })
	for _, f := range fs {
		waitFor(t, "a..e alive on "+f.id, func() bool { return runningAlive(f.n, fs) })
	}
}

// A partition that outlasts memberlist's GossipToTheDeadTime: each side
// has declared the other dead and stopped gossiping to it, so nothing in
// memberlist itself ever contacts the other side again. After the heal
// the ring must still bring the halves back together in the failure
// detector, or every node would see the other side dead forever (and
// AutoRemoveDeadAfter would remove it).
func TestLongPartitionHealsTheFailureDetector(t *testing.T) {
	const toTheDead = 300 * time.Millisecond
	fn := newFaultNet(t, 5)
	fs := fiveNodesML(t, fn, func() *memberlist.Config {
		c := fastMemberlist()
		c.GossipToTheDeadTime = toTheDead
		return c
	})
	left, right := fs[:2], fs[2:]
	fn.Partition(addrsOf(left...), addrsOf(right...))
	for _, f := range fs {
		others := right
		if slices.Contains(right, f) {
			others = left
		}
		waitFor(t, f.id+" seeing the other side dead", func() bool {
			for _, o := range others {
				if f.n.Ring().Health(o.id) != gossip.HealthDead {
					return false
				}
			}
			return true
		})
	}
	// The scenario is a partition longer than GossipToTheDeadTime: let a
	// few of them pass with the other side dead.
	allDead := time.Now()
	waitFor(t, "GossipToTheDeadTime passing", func() bool { return time.Since(allDead) > 3*toTheDead })
	fn.Heal()
	for _, f := range fs {
		waitFor(t, "a..e alive again on "+f.id, func() bool { return runningAlive(f.n, fs) })
	}
}
