package cluster_test

// Failure detection that heals: splits shorter and longer than
// memberlist's GossipToTheDeadTime, a node restarted while cut off from
// every peer, and a node restarted at a new address. Each test logs how
// long the heal took (go test -v -run 'Heal|NewAddress|Partitioned').

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/gossip"
)

// shortToTheDead is a GossipToTheDeadTime short enough that a test split
// outlasts it in a second.
const shortToTheDead = 300 * time.Millisecond

func shortToTheDeadML() *memberlist.Config {
	c := clustertest.FastMemberlist()
	c.GossipToTheDeadTime = shortToTheDead
	return c
}

// waitSeesDead waits until every node of watchers sees every node of dead
// dead.
func waitSeesDead(t *testing.T, c *clustertest.Cluster, watchers, dead []int) {
	t.Helper()
	for _, w := range watchers {
		n := c.Node(w)
		clustertest.WaitFor(t, fmt.Sprintf("n%d seeing the others dead", w), func() bool {
			for _, d := range dead {
				if n.Ring().Health(fmt.Sprintf("n%d", d)) != gossip.HealthDead {
					return false
				}
			}
			return true
		})
	}
}

// healed reports whether every node's ring holds exactly ids, the states
// agree, and every node sees every other alive at the address its ring
// records.
func healed(ns []*cluster.Node, ids []string) bool {
	if !agree(ns, ids...) {
		return false
	}
	for _, n := range ns {
		for _, o := range ns {
			if n.Ring().Health(o.Self().ID) != gossip.HealthAlive {
				return false
			}
			if got, ok := n.Ring().View().Get(o.Self().ID); !ok || got != o.Self() {
				return false
			}
		}
	}
	return true
}

// A 2|3 split heals, rings and health, whether it lasted less than
// GossipToTheDeadTime (memberlist still gossips to the dead) or much
// longer (only the reconnect loop contacts the other side again).
func TestSplitHealTimes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ml    func() *memberlist.Config
		split time.Duration // how long the split lasts once both sides see the other dead
	}{
		{"short", clustertest.FastMemberlist, 0},
		{"long", shortToTheDeadML, 5 * shortToTheDead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mildFaults(5, 21)
			cfg.Configure = withMemberlist(tc.ml)
			c := startAgreed(t, cfg)
			c.Partition([]int{0, 1}, []int{2, 3, 4})
			waitSeesDead(t, c, []int{0, 1}, []int{2, 3, 4})
			waitSeesDead(t, c, []int{2, 3, 4}, []int{0, 1})
			dead := time.Now()
			clustertest.WaitFor(t, "the split lasting", func() bool { return time.Since(dead) >= tc.split })
			c.Heal()
			start := time.Now()
			clustertest.WaitFor(t, "rings and health healed", func() bool { return healed(c.Nodes(), five) })
			t.Logf("%s split (%v with the other side dead; GossipToTheDeadTime %v): healed in %v",
				tc.name, start.Sub(dead).Round(time.Millisecond), tc.ml().GossipToTheDeadTime, time.Since(start).Round(time.Millisecond))
			var reconnects uint64
			for _, n := range c.Nodes() {
				reconnects += n.Ring().Stats().Reconnects
			}
			if tc.name == "long" && reconnects == 0 {
				t.Fatal("a long split healed without the reconnect loop reaching anyone")
			}
		})
	}
}

// A node restarted from its flush file while cut off from every peer keeps
// trying its ring's members, and once the network heals it is back in
// everyone's failure detector without a meet. Its peers' own reconnect
// loops are off, so the heal is the restarted node's doing.
func TestRestartWhilePartitionedRejoinsAfterHeal(t *testing.T) {
	cfg := mildFaults(3, 22)
	cfg.Configure = func(i int, c *cluster.Config) {
		c.Gossip.Memberlist = shortToTheDeadML()
		if i < 2 {
			c.Gossip.Reconnect = gossip.ReconnectConfig{Interval: -1} // off
		}
	}
	c := startAgreed(t, cfg)
	ids := five[:3]
	clustertest.WaitFor(t, "n0, n1 and n2 in one ring, all alive", func() bool { return healed(c.Nodes(), ids) })

	c.Partition([]int{0, 1}, []int{2})
	waitSeesDead(t, c, []int{0, 1}, []int{2})
	c.Restart(2)
	restarted := c.Node(2)
	clustertest.WaitFor(t, "restarted n2 retrying its ring's members", func() bool {
		return restarted.Ring().Stats().ReconnectAttempts >= 4
	})
	if h := restarted.Ring().Health("n0"); h == gossip.HealthAlive {
		t.Fatalf("n2 sees n0 %v across the partition", h)
	}
	c.Heal()
	start := time.Now()
	clustertest.WaitFor(t, "n2 back in every failure detector", func() bool { return healed(c.Nodes(), ids) })
	t.Logf("node restarted while partitioned: healed %v after the network", time.Since(start).Round(time.Millisecond))
	if s := restarted.Ring().Stats(); s.Reconnects == 0 {
		t.Fatalf("n2 healed without reaching anyone: %+v", s)
	}
	for _, n := range c.Nodes()[:2] {
		if s := n.Ring().Stats(); s.ReconnectAttempts != 0 {
			t.Fatalf("%s's reconnect loop is off but made %d attempts", n.Self().ID, s.ReconnectAttempts)
		}
	}
}

// A node killed and restarted with its flush file at a new address (a new
// host and port, as a rescheduled container gets) is seen alive there by
// every node within seconds: memberlist gives a dead member's name to the
// new address, and its health and the ring agree on where it is.
func TestRestartAtNewAddressSeenAliveEverywhere(t *testing.T) {
	c := startAgreed(t, mildFaults(3, 23))
	old := c.Node(2).Self()
	c.Stop(2)
	waitSeesDead(t, c, []int{0, 1}, []int{2})
	start := time.Now()
	c.Move(2)
	if self := c.Node(2).Self(); self.Host == old.Host {
		t.Fatalf("n2 restarted at its old host %s", old.Addr())
	}
	clustertest.WaitFor(t, "n2 alive at its new address everywhere", func() bool { return healed(c.Nodes(), five[:3]) })
	took := time.Since(start)
	t.Logf("restart at a new address (%s -> %s): seen alive everywhere in %v", old.Addr(), c.Node(2).Self().Addr(), took.Round(time.Millisecond))
}
