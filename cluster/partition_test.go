package cluster_test

// Partition scenarios: five nodes in one process, each on its own loopback
// address of clustertest's fault-injecting network, which splits them,
// cuts their connections, loses, duplicates and reorders their failure
// detector's datagrams, and heals. Every wait polls a condition with a
// deadline.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/gossip"
)

// five are the ids of the five nodes of faultCluster(5, ...).
var five = []string{"n0", "n1", "n2", "n3", "n4"}

// mildFaults is a clustertest config of nodes on the fault-injecting
// network whose failure-detector datagrams are now and then lost,
// duplicated and reordered, the dice seeded with seed.
func mildFaults(nodes int, seed uint64) clustertest.Config {
	return clustertest.Config{Nodes: nodes, Faults: true, Seed: seed, Loss: 0.02, Duplicate: 0.02, Reorder: 0.05}
}

// startAgreed starts cfg's cluster and waits until the nodes' states
// agree too (their clocks, beyond what WaitConverged checks).
func startAgreed(t *testing.T, cfg clustertest.Config) *clustertest.Cluster {
	t.Helper()
	c := clustertest.Start(t, cfg)
	ids := make([]string, cfg.Nodes)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%d", i)
	}
	clustertest.WaitFor(t, "the nodes' states agreeing", func() bool { return agree(c.Nodes(), ids...) })
	return c
}

// withMemberlist returns a Configure that gives every node ml's
// memberlist config.
func withMemberlist(ml func() *memberlist.Config) func(int, *cluster.Config) {
	return func(_ int, c *cluster.Config) { c.Gossip.Memberlist = ml() }
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

// seesAlive reports whether n's failure detector sees every node of ids
// alive (the ring may hold virtual nodes too, which never are).
func seesAlive(n *cluster.Node, ids []string) bool {
	for _, id := range ids {
		if n.Ring().Health(id) != gossip.HealthAlive {
			return false
		}
	}
	return true
}

// waitAllAlive waits until every node of c sees every node of c alive.
func waitAllAlive(t *testing.T, c *clustertest.Cluster, ids []string) {
	t.Helper()
	for i, n := range c.Nodes() {
		clustertest.WaitFor(t, fmt.Sprintf("all alive on n%d", i), func() bool { return seesAlive(n, ids) })
	}
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
	c := startAgreed(t, mildFaults(5, 1))
	all := c.Nodes()
	// Virtual nodes each side will remove.
	if err := all[0].Ring().MInsert(ctxT(t), []notp.Node{virtual("v1", 1), virtual("v2", 2), virtual("v3", 3)}, 0, false); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "v1..v3 everywhere", func() bool { return agree(all, append(slices.Clone(five), "v1", "v2", "v3")...) })

	c.Partition([]int{0, 1}, []int{2, 3, 4})
	// Every node inserts two nodes of its own while its side removes a
	// virtual node (v3 on both sides), all at once.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i, n := range all {
		wg.Go(func() {
			for j := range 2 {
				x := virtual(fmt.Sprintf("%s-x%d", five[i], j), 100+10*i+j)
				if err := n.Ring().Insert(ctxT(t), x, 2+j, false); err != nil {
					errs <- fmt.Errorf("insert %s on %s: %w", x.ID, five[i], err)
				}
			}
		})
	}
	for _, rm := range []struct {
		on  *cluster.Node
		ids []string
	}{{all[1], []string{"v1", "v3"}}, {all[3], []string{"v2", "v3"}}} {
		wg.Go(func() {
			for _, id := range rm.ids {
				n, _ := rm.on.Ring().View().Get(id)
				if err := rm.on.Ring().Remove(ctxT(t), n, true); err != nil {
					errs <- fmt.Errorf("remove %s on %s: %w", id, rm.on.Self().ID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	left := append(slices.Clone(five), "n0-x0", "n0-x1", "n1-x0", "n1-x1", "v2")
	right := append(slices.Clone(five), "n2-x0", "n2-x1", "n3-x0", "n3-x1", "n4-x0", "n4-x1", "v1")
	clustertest.WaitFor(t, "the 2-side agreeing on its changes", func() bool { return agree(all[:2], left...) })
	clustertest.WaitFor(t, "the 3-side agreeing on its changes", func() bool { return agree(all[2:], right...) })
	for _, n := range all[:2] {
		if linked := slices.ContainsFunc(five[2:], n.Kernel().Connected); linked {
			t.Fatalf("%s linked across the partition", n.Self().ID)
		}
	}

	c.Heal()
	xs := []string{"n0-x0", "n0-x1", "n1-x0", "n1-x1", "n2-x0", "n2-x1", "n3-x0", "n3-x1", "n4-x0", "n4-x1"}
	clustertest.WaitFor(t, "every ring equal after the heal", func() bool { return agree(all, append(slices.Clone(five), xs...)...) })
	for _, n := range all {
		w := n.Ring().View().Weights()
		for _, id := range xs {
			if got, want := w[id], 2+int(id[len(id)-1]-'0'); got != want {
				t.Fatalf("weight of %s on %s = %d, want %d", id, n.Self().ID, got, want)
			}
		}
	}
	waitAllAlive(t, c, five)
}

// A node removed by one side while it keeps running on the other side
// stays removed after the heal: it learns of its removal and no state it
// or its side gossips brings it back.
func TestPartitionRemovedNodeStaysRemovedAfterHeal(t *testing.T) {
	c := startAgreed(t, mildFaults(5, 2))
	all := c.Nodes()
	b := all[1]
	c.Partition([]int{0, 1}, []int{2, 3, 4})
	if err := all[2].Ring().Remove(ctxT(t), b.Self(), true); err != nil {
		t.Fatalf("remove n1 on n2: %v", err)
	}
	// Meanwhile n1 and n0 go on changing the ring on their side.
	if err := b.Ring().Insert(ctxT(t), virtual("n1-x", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := all[0].Ring().Insert(ctxT(t), virtual("n0-x", 2), 0, false); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "the 3-side without n1", func() bool { return agree(all[2:], "n0", "n2", "n3", "n4") })
	clustertest.WaitFor(t, "the 2-side with n1's and n0's inserts", func() bool {
		return agree(all[:2], append(slices.Clone(five), "n0-x", "n1-x")...)
	})

	c.Heal()
	rest := []*cluster.Node{all[0], all[2], all[3], all[4]}
	want := []string{"n0", "n2", "n3", "n4", "n0-x", "n1-x"}
	clustertest.WaitFor(t, "the four agreeing without n1", func() bool { return agree(rest, want...) })
	clustertest.WaitFor(t, "n1 out of the ring", func() bool { return slices.Equal(ringIDs(b), []string{"n1"}) })
	// It must stay so while gossip goes on: let every remaining node
	// receive a good number of further ring messages (polls, pushes).
	base := received(rest)
	clustertest.WaitFor(t, "more gossip rounds", func() bool {
		if !agree(rest, want...) {
			t.Fatalf("the four rings changed after converging: %v / %v / %v / %v",
				ringIDs(rest[0]), ringIDs(rest[1]), ringIDs(rest[2]), ringIDs(rest[3]))
		}
		return received(rest) >= base+40
	})
	if !slices.Equal(ringIDs(b), []string{"n1"}) {
		t.Fatalf("removed n1 is back in a ring: %v", ringIDs(b))
	}
}

// A node stopped and restarted from its flush file in the middle of a
// partition rejoins its side, catches up with what its side did while it
// was down, and after the heal every ring holds every change.
func TestPartitionRestartFromFlushFileMidPartition(t *testing.T) {
	c := startAgreed(t, mildFaults(5, 3))
	c.Partition([]int{0, 1}, []int{2, 3, 4})
	port := c.Node(4).Self().Port
	c.Stop(4)
	if err := c.Node(2).Ring().Insert(ctxT(t), virtual("n2-x", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(0).Ring().Insert(ctxT(t), virtual("n0-x", 2), 0, false); err != nil {
		t.Fatal(err)
	}
	c.Restart(4)
	if got := c.Node(4).Self().Port; got != port {
		t.Fatalf("restarted on port %d, want %d", got, port)
	}
	side := c.Nodes()[2:]
	clustertest.WaitFor(t, "restarted n4 catching up with its side", func() bool {
		return agree(side, append(slices.Clone(five), "n2-x")...)
	})
	if got := ringIDs(c.Node(0)); slices.Contains(got, "n2-x") || !slices.Contains(got, "n0-x") {
		t.Fatalf("n0's ring %v across the partition: want n0-x and not n2-x", got)
	}

	c.Heal()
	clustertest.WaitFor(t, "every ring equal after the heal", func() bool {
		return agree(c.Nodes(), append(slices.Clone(five), "n0-x", "n2-x")...)
	})
	waitAllAlive(t, c, five)
}

// An asymmetric partition (n0 cannot reach n1, n1 still reaches n0) stops
// every stream between the two and n0's datagrams to n1; changes made on
// both of them still reach everyone through the other nodes, and once the
// block is lifted n0 and n1 see each other alive again.
func TestAsymmetricPartitionChangesSpreadAround(t *testing.T) {
	cfg := mildFaults(5, 4)
	cfg.Blackhole = true
	c := startAgreed(t, cfg)
	all := c.Nodes()
	a, b := all[0], all[1]
	c.Block(0, 1)
	if err := a.Ring().Insert(ctxT(t), virtual("n0-x", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := b.Ring().Insert(ctxT(t), virtual("n1-x", 2), 0, false); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "both inserts everywhere, around the block", func() bool {
		return agree(all, append(slices.Clone(five), "n0-x", "n1-x")...)
	})
	if a.Kernel().Connected("n1") || b.Kernel().Connected("n0") {
		t.Fatal("n0 and n1 connected across the block")
	}
	c.Unblock(0, 1)
	clustertest.WaitFor(t, "n0 and n1 linked again", func() bool { return a.Kernel().Connected("n1") && b.Kernel().Connected("n0") })
	waitAllAlive(t, c, five)
}

// A partition that outlasts memberlist's GossipToTheDeadTime: each side
// has declared the other dead and stopped gossiping to it, so nothing in
// memberlist itself ever contacts the other side again. After the heal
// the ring must still bring the halves back together in the failure
// detector, or every node would see the other side dead forever (and
// AutoRemoveDeadAfter would remove it).
func TestLongPartitionHealsTheFailureDetector(t *testing.T) {
	cfg := mildFaults(5, 5)
	cfg.Configure = withMemberlist(shortToTheDeadML)
	c := startAgreed(t, cfg)
	c.Partition([]int{0, 1}, []int{2, 3, 4})
	waitSeesDead(t, c, []int{0, 1}, []int{2, 3, 4})
	waitSeesDead(t, c, []int{2, 3, 4}, []int{0, 1})
	// The scenario is a partition longer than GossipToTheDeadTime: let a
	// few of them pass with the other side dead.
	allDead := time.Now()
	clustertest.WaitFor(t, "GossipToTheDeadTime passing", func() bool { return time.Since(allDead) > 3*shortToTheDead })
	c.Heal()
	waitAllAlive(t, c, five)
}
