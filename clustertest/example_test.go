package clustertest_test

import (
	"testing"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/gossip"
)

// A test of a service built on cluster nodes: start three nodes over the
// fault-injecting network, cut one off, check the others see it fail,
// heal and wait until all agree again. (An example has no *testing.T, so
// this one shows the test function; TestPartitionHealAndConverge runs
// the same steps.)
func Example() {
	testFailover := func(t *testing.T) {
		clustertest.CheckLeaks(t) // first: its check runs after the nodes stop
		c := clustertest.Start(t, clustertest.Config{Nodes: 3, Faults: true})
		c.Partition([]int{0}, []int{1, 2})
		clustertest.WaitFor(t, "n0 seen failed", func() bool {
			return c.Node(1).Ring().Health("n0") != gossip.HealthAlive
		})
		c.Heal()
		if err := c.WaitConverged(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	_ = testFailover
}
