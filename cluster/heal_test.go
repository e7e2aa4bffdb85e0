package cluster_test

// Failure detection that heals: splits shorter and longer than
// memberlist's GossipToTheDeadTime, a node restarted while cut off from
// every peer, and a node restarted at a new address. Each test logs how
// long the heal took (go test -v -run 'Heal|NewAddress|Partitioned').

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/faultnet"
)

// shortToTheDead is a GossipToTheDeadTime short enough that a test split
// outlasts it in a second.
const shortToTheDead = 300 * time.Millisecond

func shortToTheDeadML() *memberlist.Config {
	c := fastMemberlist()
	c.GossipToTheDeadTime = shortToTheDead
	return c
}

// ringOf starts ids on fn (each with ml's memberlist config and rc's
// reconnect config, nil/zero for the defaults of these tests) and forms
// one ring, all alive.
func ringOf(t *testing.T, fn *faultnet.Network, ml func() *memberlist.Config, rc gossip.ReconnectConfig, ids ...string) []*faultNode {
	t.Helper()
	var fs []*faultNode
	for _, id := range ids {
		h, err := fn.Host(faultnet.Loopback(int(nextHost.Add(1))))
		if err != nil {
			t.Fatal(err)
		}
		f := &faultNode{id: id, h: h, flush: t.TempDir() + "/" + id + ".ring", ml: ml, rc: rc}
		f.start(t, 0)
		fs = append(fs, f)
	}
	for _, f := range fs[1:] {
		if err := fs[0].n.Ring().Meet(ctxT(t), f.n.Self()); err != nil {
			t.Fatalf("meet %s: %v", f.id, err)
		}
	}
	waitFor(t, "one ring", func() bool { return agree(nodesOf(fs), ids...) })
	for _, f := range fs {
		waitFor(t, "all alive on "+f.id, func() bool { return runningAlive(f.n, fs) })
	}
	return fs
}

// waitSeesDead waits until every node of fs sees every node of others dead.
func waitSeesDead(t *testing.T, fs, others []*faultNode) {
	t.Helper()
	for _, f := range fs {
		waitFor(t, f.id+" seeing the others dead", func() bool {
			for _, o := range others {
				if f.n.Ring().Health(o.id) != gossip.HealthDead {
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
func healed(fs []*faultNode, ids []string) bool {
	if !agree(nodesOf(fs), ids...) {
		return false
	}
	for _, f := range fs {
		for _, o := range fs {
			if f.n.Ring().Health(o.id) != gossip.HealthAlive {
				return false
			}
			if n, ok := f.n.Ring().View().Get(o.id); !ok || n != o.n.Self() {
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
	ids := []string{"a", "b", "c", "d", "e"}
	for _, tc := range []struct {
		name  string
		ml    func() *memberlist.Config
		split time.Duration // how long the split lasts once both sides see the other dead
	}{
		{"short", fastMemberlist, 0},
		{"long", shortToTheDeadML, 5 * shortToTheDead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFaultNet(t, 21)
			fs := ringOf(t, fn, tc.ml, gossip.ReconnectConfig{}, ids...)
			left, right := fs[:2], fs[2:]
			fn.Partition(addrsOf(left...), addrsOf(right...))
			waitSeesDead(t, left, right)
			waitSeesDead(t, right, left)
			dead := time.Now()
			waitFor(t, "the split lasting", func() bool { return time.Since(dead) >= tc.split })
			fn.Heal()
			start := time.Now()
			waitFor(t, "rings and health healed", func() bool { return healed(fs, ids) })
			t.Logf("%s split (%v with the other side dead; GossipToTheDeadTime %v): healed in %v",
				tc.name, start.Sub(dead).Round(time.Millisecond), tc.ml().GossipToTheDeadTime, time.Since(start).Round(time.Millisecond))
			var reconnects uint64
			for _, f := range fs {
				reconnects += f.n.Ring().Stats().Reconnects
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
	fn := newFaultNet(t, 22)
	off := gossip.ReconnectConfig{Interval: -1}
	fs := ringOf(t, fn, shortToTheDeadML, off, "a", "b")
	c := &faultNode{id: "c", flush: t.TempDir() + "/c.ring", ml: shortToTheDeadML}
	h, err := fn.Host(faultnet.Loopback(int(nextHost.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	c.h = h
	c.start(t, 0)
	if err := fs[0].n.Ring().Meet(ctxT(t), c.n.Self()); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(fs), c)
	ids := []string{"a", "b", "c"}
	waitFor(t, "a, b and c in one ring, all alive", func() bool { return healed(all, ids) })

	fn.Partition(addrsOf(fs...), addrsOf(c))
	waitSeesDead(t, fs, []*faultNode{c})
	if err := c.n.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	port := c.n.Self().Port
	c.start(t, port)
	waitFor(t, "restarted c retrying its ring's members", func() bool {
		return c.n.Ring().Stats().ReconnectAttempts >= 4
	})
	if h := c.n.Ring().Health("a"); h == gossip.HealthAlive {
		t.Fatalf("c sees a %v across the partition", h)
	}
	fn.Heal()
	start := time.Now()
	waitFor(t, "c back in every failure detector", func() bool { return healed(all, ids) })
	t.Logf("node restarted while partitioned: healed %v after the network", time.Since(start).Round(time.Millisecond))
	if s := c.n.Ring().Stats(); s.Reconnects == 0 {
		t.Fatalf("c healed without reaching anyone: %+v", s)
	}
	for _, f := range fs {
		if s := f.n.Ring().Stats(); s.ReconnectAttempts != 0 {
			t.Fatalf("%s's reconnect loop is off but made %d attempts", f.id, s.ReconnectAttempts)
		}
	}
}

// A node killed and restarted with its flush file at a new address (a new
// host and port, as a rescheduled container gets) is seen alive there by
// every node within seconds: memberlist gives a dead member's name to the
// new address, and its health and the ring agree on where it is.
func TestRestartAtNewAddressSeenAliveEverywhere(t *testing.T) {
	fn := newFaultNet(t, 23)
	ids := []string{"a", "b", "c"}
	fs := ringOf(t, fn, nil, gossip.ReconnectConfig{}, ids...)
	c := fs[2]
	old := c.n.Self()
	if err := c.n.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitSeesDead(t, fs[:2], []*faultNode{c})

	h, err := fn.Host(faultnet.Loopback(int(nextHost.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	c.h = h
	start := time.Now()
	c.start(t, 0)
	if c.n.Self() == old {
		t.Fatalf("c restarted at its old address %s", old.Addr())
	}
	waitFor(t, "c alive at its new address everywhere", func() bool { return healed(fs, ids) })
	took := time.Since(start)
	t.Logf("restart at a new address (%s -> %s): seen alive everywhere in %v", old.Addr(), c.n.Self().Addr(), took.Round(time.Millisecond))
}
