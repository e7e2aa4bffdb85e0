// Package clustertest runs a cluster of notp nodes inside one test, in
// the spirit of hashicorp/raft's MakeCluster: [Start] builds N
// [cluster.Node]s with a strong generated cookie, failure-detector and
// gossip timings fast enough for tests, a flush file each, and forms one
// ring, returning once every node agrees on it and sees the others
// alive. The test then drives the nodes ([Cluster.Node]), stops and
// restarts them ([Cluster.Stop], [Cluster.Restart], [Cluster.RestartAt],
// [Cluster.Move]), cuts them apart ([Cluster.Partition], [Cluster.Block],
// [Cluster.Unblock], [Cluster.Heal]) and waits for them to agree again
// ([Cluster.WaitConverged]).
// [Cluster.Add] starts one more node for the test to join to the ring.
//
//	func TestFailover(t *testing.T) {
//		clustertest.CheckLeaks(t)
//		c := clustertest.Start(t, clustertest.Config{Nodes: 3, Faults: true})
//		c.Partition([]int{0}, []int{1, 2})
//		clustertest.WaitFor(t, "n0 seen dead", func() bool {
//			return c.Node(1).Ring().Health("n0") != gossip.HealthAlive
//		})
//		c.Heal()
//		if err := c.WaitConverged(t.Context()); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// # Network
//
// Without Config.Faults the nodes listen on 127.0.0.1, each on a free
// port. With it each node gets its own loopback address (127.0.0.x,
// which Linux routes to lo) on a fault-injecting network that tells
// nodes apart by address: a partition drops datagrams between groups,
// cuts their connections and refuses new ones (or, with
// Config.Blackhole, holds them until their dial gives up); Config.Loss,
// Duplicate and Reorder add random datagram faults. [Cluster.Move]
// restarts a node at a new address of that network. The traffic stays real TCP and
// UDP on loopback, so the code under test is the code that ships.
//
// # Services under test
//
// A service built on the nodes (a lock manager, say) runs beside each of
// them through [Run]: it is built and started each time its node
// starts, keeps its files in the node's own [Cluster.Dir] (which outlives
// restarts), and is stopped before its node stops, at Stop, Restart and
// the test's cleanup. [Services.At] returns node i's current instance.
// Config.OnStart and Config.OnStop are the hooks underneath, for
// anything else that must follow a node's lifecycle.
//
//	cfg := clustertest.Config{Nodes: 3, Faults: true}
//	dlms := clustertest.Run(&cfg, func(c *clustertest.Cluster, i int) (*dlm.DLM, error) {
//		return dlm.New(c.Node(i), dlm.Config{Dir: c.Dir(i)})
//	})
//	c := clustertest.Start(t, cfg)
//	c.Restart(2) // n2's DLM stops, n2 restarts, a new DLM starts from the same Dir
//	l, err := dlms.At(0).WLock(ctx, "job", "me", time.Minute)
//
// # Helpers
//
// [WaitFor] polls a condition with a deadline (tests never sleep to
// synchronise), [Context] bounds a test's calls in time, [CheckLeaks] fails a test that leaves goroutines
// running, [FastMemberlist] is the failure-detector config for nodes
// built by hand, [Logger] routes logs to the test's output (at debug
// level with -v, warnings only otherwise), which Start's nodes use, and
// [StartKernel] starts a bare kernel outside the ring (an operator's
// client, say), closed at the test's end.
// [Scrape] GETs a node's /metrics (set cluster.Config.MetricsAddr to
// "127.0.0.1:0" through Config.Configure) and parses it with the
// Prometheus exposition-format parser into [Metrics], whose Value and
// MustValue find a series by name and labels.
//
// # Budgets
//
// At most [MaxNodes] nodes; a scrape reads at most [MaxScrapeBytes]; every wait gives up after [WaitTimeout] (or
// its ctx) and fails the test with what still disagreed.
//
// # Concurrency
//
// A Cluster belongs to its test's goroutine: Start, Stop, Restart, Move,
// Add, Partition, Block, Unblock and Heal fail the test through t, so call them there, and
// the OnStart and OnStop hooks run there. Nodes, Node, Dir and Cookie
// may be called from any goroutine, as may Services.At, and the nodes
// themselves are safe for concurrent use.
package clustertest
