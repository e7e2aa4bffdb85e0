package conflux

import (
	"context"
	"testing"

	"github.com/hashicorp/raft"
)

// suffrage returns how the leader's configuration has node id.
func suffrage(s *Store[counter, int], id string) (raft.ServerSuffrage, bool) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	for _, sv := range f.Configuration().Servers {
		if string(sv.ID) == id {
			return sv.Suffrage, true
		}
	}
	return 0, false
}

// A node that joins the ring and runs the group becomes a non-voter (the
// group already has its 3 voters); when a voter is removed from the ring
// it leaves the group and the non-voter is promoted in its place. A node
// that is only down stays in the group.
func TestMembershipFollowsRing(t *testing.T) {
	g := newGroup(t, 3, nil)
	extra := startNode(t, "n3", nil)
	meet(t, g.nodes[0], extra)
	es := g.startStore(extra, counterConfig(t, nil, 3))
	l := g.stores[g.leader()]
	waitFor(t, "n3 added as non-voter", func() bool {
		sf, ok := suffrage(l, "n3")
		return ok && sf == raft.Nonvoter
	})
	if _, err := es.Perform(ctxT(t), "add", 4); err != nil {
		t.Fatalf("Perform on the non-voter: %v", err)
	}
	if st, err := es.Read(ctxT(t), Linearizable); err != nil || st.N != 4 {
		t.Fatalf("non-voter Read = %+v, %v", st, err)
	}

	// Remove a follower from the ring.
	li := g.leader()
	victim := (li + 1) % 3
	vid := g.nodes[victim].Self().ID
	if err := g.nodes[li].Ring().Remove(ctxT(t), g.nodes[victim].Self(), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, vid+" removed from the group", func() bool {
		_, ok := suffrage(l, vid)
		return !ok
	})
	waitFor(t, "n3 promoted to voter", func() bool {
		sf, ok := suffrage(l, "n3")
		return ok && sf == raft.Voter
	})

	// The third original node only goes down: it stays a voter.
	down := 3 - li - victim
	did := g.nodes[down].Self().ID
	g.stores[down].Stop(context.Background())
	g.nodes[down].Stop(context.Background())
	waitFor(t, did+" seen dead", func() bool { return !g.stores[li].ring.members()[did].alive })
	g.stores[li].reconcile(ctxT(t))
	if sf, ok := suffrage(l, did); !ok || sf != raft.Voter {
		t.Fatalf("unreachable %s left the group (in=%v suffrage=%v)", did, ok, sf)
	}
	if _, err := es.Perform(ctxT(t), "add", 1); err != nil {
		t.Fatalf("Perform with one voter down: %v", err)
	}
}

// A leader removed from the ring hands leadership over and the new
// leader removes it from the group.
func TestLeaderRemovedFromRing(t *testing.T) {
	g := newGroup(t, 3, nil)
	li := g.leader()
	other := (li + 1) % 3
	lid := g.nodes[li].Self().ID
	if err := g.nodes[other].Ring().Remove(ctxT(t), g.nodes[li].Self(), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, lid+" out of the group", func() bool {
		nl, ok := g.stores[other].Leader()
		if !ok || nl.ID == lid {
			return false
		}
		for i, s := range g.stores {
			if g.nodes[i].Self().ID == nl.ID {
				_, in := suffrage(s, lid)
				return !in
			}
		}
		return false
	})
	if _, err := g.stores[other].Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
}
