package conflux

// Every use of packages cluster and gossip is in this file (and admin.go's
// registration of the raft command), so that changes of their API touch
// only these.

import (
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// ringView is what a store needs from its node.
type ringView struct{ n *cluster.Node }

func (r ringView) kernel() *kernel.Kernel { return r.n.Kernel() }
func (r ringView) self() notp.Node        { return r.n.Self() }

// members returns the ring's nodes by ID, and whether memberlist sees
// each alive.
func (r ringView) members() map[string]ringMember {
	ms := r.n.Ring().Members()
	out := make(map[string]ringMember, len(ms))
	for _, m := range ms {
		out[m.Node.ID] = ringMember{node: m.Node, alive: m.Health == gossip.HealthAlive}
	}
	return out
}

type ringMember struct {
	node  notp.Node
	alive bool
}

// ringChange is a ring event that matters to a group: nodes removed from
// the ring (removed or left), or any other change worth a reconcile.
type ringChange struct {
	removed     []notp.Node
	selfRemoved bool // this node was removed from the ring or left it
}

// subscribe returns ring changes and a cancel func closing the channel.
func (r ringView) subscribe() (<-chan ringChange, func()) {
	events, cancel := r.n.Ring().Subscribe(256)
	out := make(chan ringChange, 256)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for e := range events {
			var c ringChange
			switch e.Kind {
			case gossip.EventRemoved:
				c.removed = e.Nodes
			case gossip.EventSelfRemoved, gossip.EventLeft:
				c.selfRemoved = true
			case gossip.EventInserted, gossip.EventAlive, gossip.EventDead, gossip.EventMemberLeft:
			default:
				continue
			}
			select {
			case out <- c:
			case <-done:
				return
			default: // the reconcile timer catches up
			}
		}
	}()
	return out, func() { close(done); cancel() }
}
