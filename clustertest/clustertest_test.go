package clustertest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

func TestStartFormsOneRingAllAlive(t *testing.T) {
	clustertest.CheckLeaks(t)
	c := clustertest.Start(t, clustertest.Config{Nodes: 3})
	if got := len(c.Nodes()); got != 3 {
		t.Fatalf("%d nodes, want 3", got)
	}
	for i, n := range c.Nodes() {
		if n != c.Node(i) {
			t.Fatalf("Nodes()[%d] is not Node(%d)", i, i)
		}
		if got := n.Ring().View().NumberNodes(); got != 3 {
			t.Fatalf("%s's ring holds %d nodes, want 3", n.Self().ID, got)
		}
		for _, m := range n.Ring().Members() {
			if m.Health != gossip.HealthAlive {
				t.Fatalf("%s sees %s %v", n.Self().ID, m.Node.ID, m.Health)
			}
		}
	}
	if len(c.Cookie()) != 64 {
		t.Fatalf("cookie %q: want 64 hex digits", c.Cookie())
	}
	if other := clustertest.NewCookie(t); other == c.Cookie() {
		t.Fatal("two generated cookies are equal")
	}
}

func TestPartitionHealAndConverge(t *testing.T) {
	clustertest.CheckLeaks(t)
	c := clustertest.Start(t, clustertest.Config{Nodes: 3, Faults: true, Seed: 7})
	c.Partition([]int{0}, []int{1, 2})
	clustertest.WaitFor(t, "n1 to see n0 fail", func() bool {
		return c.Node(1).Ring().Health("n0") != gossip.HealthAlive
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.WaitConverged(ctx); !errors.Is(err, clustertest.ErrNotConverged) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConverged while split = %v, want ErrNotConverged and the deadline", err)
	}
	c.Heal()
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func TestBlockOneDirectionCutsTheLink(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 2, Faults: true})
	c.Block(0, 1)
	clustertest.WaitFor(t, "n0 to see n1 fail", func() bool {
		return c.Node(0).Ring().Health("n1") != gossip.HealthAlive
	})
	c.Heal()
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func TestStopAndRestartAtTheSamePort(t *testing.T) {
	clustertest.CheckLeaks(t)
	c := clustertest.Start(t, clustertest.Config{Nodes: 3})
	port := c.Node(2).Self().Port
	c.Stop(2)
	clustertest.WaitFor(t, "n0 to see n2 fail", func() bool {
		return c.Node(0).Ring().Health("n2") != gossip.HealthAlive
	})
	// The two running nodes agree; the stopped one is left out.
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("with n2 stopped: %v", err)
	}
	c.Restart(2)
	if got := c.Node(2).Self().Port; got != port {
		t.Fatalf("restarted at port %d, want %d", got, port)
	}
	// It rejoins from its flush file: nobody meets it again.
	if got := c.Node(2).Ring().View().NumberNodes(); got != 3 {
		t.Fatalf("restarted node loaded a ring of %d nodes, want 3", got)
	}
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

func TestRestartAtANewPortOverFaults(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 3, Faults: true})
	old := c.Node(1).Self()
	c.RestartAt(1, 0)
	self := c.Node(1).Self()
	if self.Port == old.Port || self.Host != old.Host {
		t.Fatalf("restarted as %v, want a new port on %s (was %v)", self, old.Host, old)
	}
	clustertest.WaitFor(t, "n0's ring to hold n1's new address", func() bool {
		n, ok := c.Node(0).Ring().View().Get("n1")
		return ok && n.Port == self.Port
	})
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after RestartAt: %v", err)
	}
}

func TestMoveToANewAddress(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 3, Faults: true})
	old := c.Node(2).Self()
	c.Move(2)
	self := c.Node(2).Self()
	if self.Host == old.Host {
		t.Fatalf("moved to %v, want a new host (was %v)", self, old)
	}
	if got := c.Node(2).Ring().View().NumberNodes(); got != 3 {
		t.Fatalf("moved node loaded a ring of %d nodes, want 3", got)
	}
	clustertest.WaitFor(t, "n0's ring to hold n2's new address", func() bool {
		n, ok := c.Node(0).Ring().View().Get("n2")
		return ok && n == self
	})
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after Move: %v", err)
	}
}

// Unblock lifts one direction of a partition: the link stays cut until
// both directions are open again.
func TestUnblockLiftsOneDirection(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 2, Faults: true})
	c.Partition([]int{0}, []int{1})
	clustertest.WaitFor(t, "n0 to see n1 fail", func() bool {
		return c.Node(0).Ring().Health("n1") != gossip.HealthAlive
	})
	c.Unblock(0, 1)
	if c.Node(0).Kernel().Connected("n1") {
		t.Fatal("n0 linked to n1 with only one direction open")
	}
	c.Unblock(1, 0)
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after both Unblocks: %v", err)
	}
}

// With Blackhole a dial across a partition hangs until its context ends
// instead of failing at once.
func TestBlackholeHoldsDials(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 2, Faults: true, Blackhole: true})
	c.Partition([]int{0}, []int{1})
	k := c.Node(0).Kernel()
	clustertest.WaitFor(t, "the link cut", func() bool { return !k.Connected("n1") })
	const wait = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	conn, err := k.Dial(ctx, c.Node(1).Self().Addr(), 0x7f)
	if err == nil {
		conn.Close()
		t.Fatal("dial across the partition succeeded")
	}
	if took := time.Since(start); took < wait/2 {
		t.Fatalf("dial failed after %v (%v), want it held until its context ended", took, err)
	}
}

func TestConfigureAdjustsEveryNode(t *testing.T) {
	var seen []int
	c := clustertest.Start(t, clustertest.Config{Nodes: 2, Configure: func(i int, cfg *cluster.Config) {
		seen = append(seen, i)
		cfg.AllowMemberCommands = true
		cfg.Gossip.RFactor = 3
	}})
	if len(seen) != 2 || seen[0] != 0 || seen[1] != 1 {
		t.Fatalf("Configure called for %v, want [0 1]", seen)
	}
	if got := c.Node(1).Ring().View().Weights()["n1"]; got != 3 {
		t.Fatalf("n1's weight %d, want the configured 3", got)
	}
}

// A kernel from StartKernel runs, reaches the cluster's nodes with the
// cluster's cookie, and is closed at the test's cleanup.
func TestStartKernelReachesTheNodes(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 1})
	var k *kernel.Kernel
	t.Run("client", func(t *testing.T) {
		k = clustertest.StartKernel(t, kernel.Config{Node: notp.Node{ID: "client", Host: "127.0.0.1"}, Cookie: c.Cookie()})
		if err := k.Connect(c.Node(0).Self()); err != nil {
			t.Fatal(err)
		}
		clustertest.WaitFor(t, "the client linked to n0", func() bool { return k.Connected("n0") })
		if err := k.Ping(t.Context(), c.Node(0).Self()); err != nil {
			t.Fatalf("ping n0: %v", err)
		}
	})
	if err := k.Ping(t.Context(), c.Node(0).Self()); !errors.Is(err, kernel.ErrClosed) {
		t.Fatalf("ping after the client's cleanup = %v, want kernel.ErrClosed", err)
	}
}

func TestContextEndsAfterItsBudget(t *testing.T) {
	ctx := clustertest.Context(t, 20*time.Millisecond)
	if _, ok := ctx.Deadline(); !ok {
		t.Fatal("no deadline")
	}
	select {
	case <-ctx.Done():
	case <-time.After(clustertest.WaitTimeout):
		t.Fatal("the context outlived its budget")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", ctx.Err())
	}
}
