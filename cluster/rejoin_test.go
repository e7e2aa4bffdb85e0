package cluster_test

import (
	"testing"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
)

// A member's meet re-admits a node that left or was removed and then came
// back with a fresh state (no flush file): the member's tombstone of it
// must not win over the entry the fresh node writes for itself when the
// join reaches it, or the node falls out again at once.
func TestMemberMeetReadmitsANodeThatWasRemoved(t *testing.T) {
	for _, how := range []string{"left", "removed"} {
		t.Run(how, func(t *testing.T) {
			a := startNode(t, nodeOpts{id: "a"})
			b := startNode(t, nodeOpts{id: "b"})
			j := startNode(t, nodeOpts{id: "j"})
			for _, n := range []*cluster.Node{b, j} {
				if err := a.Ring().Meet(ctxT(t), n.Self()); err != nil {
					t.Fatal(err)
				}
			}
			// Equal clocks, not only rings: every node has merged j's
			// own write of its entry, so the removal below comes after it
			// rather than concurrently.
			clustertest.WaitFor(t, "a, b, j", func() bool { return agree([]*cluster.Node{a, b, j}, "a", "b", "j") })
			if how == "left" {
				if err := j.Leave(ctxT(t), false); err != nil {
					t.Fatal(err)
				}
			} else if err := a.Ring().Remove(ctxT(t), j.Self(), false); err != nil {
				t.Fatal(err)
			}
			clustertest.WaitFor(t, "j gone", func() bool { return agree([]*cluster.Node{a, b}, "a", "b") })
			if err := j.Stop(ctxT(t)); err != nil {
				t.Fatal(err)
			}

			j2 := startNode(t, nodeOpts{id: "j"})
			if err := b.Ring().Meet(ctxT(t), j2.Self()); err != nil {
				t.Fatal(err)
			}
			clustertest.WaitFor(t, "j back in every ring", func() bool { return agree([]*cluster.Node{a, b, j2}, "a", "b", "j") })
		})
	}
}
