package dsm

// The DSM's uses of the cluster's ring, kept in this one file.

import (
	"sync"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// ringView is what the DSM needs from the ring.
type ringView interface {
	// owner is the node that owns id.
	owner(id string) (notp.Node, bool)
	self() notp.Node
	down(nodeID string) bool
	// watch calls changed after every ring change until stop is closed.
	watch(stop <-chan struct{}, changed func())
	// moved reports whether the ring changed since moved last looked:
	// a request may arrive on the new ring before watch hears of it.
	moved() bool
	kernel() *kernel.Kernel
}

// clusterRing reads ownership from the node's ring. A node removed from
// the ring (or that left it) falls back to a ring of its own, where it
// would own everything; it keeps instead the last ring it shared with
// others, minus itself, as its view of who owns what, so it hands its
// semaphores to the nodes that took its share.
type clusterRing struct {
	n *cluster.Node

	mu       sync.Mutex
	last     *chash.Ring // the last ring with other nodes
	departed bool
	seen     gossip.View // the view moved last compared with
}

func newClusterRing(n *cluster.Node) *clusterRing {
	c := &clusterRing{n: n, seen: n.Ring().View()}
	c.update(false)
	return c
}

func (c *clusterRing) kernel() *kernel.Kernel { return c.n.Kernel() }
func (c *clusterRing) self() notp.Node        { return c.n.Self() }

func (c *clusterRing) update(departed bool) {
	r := c.n.Ring().View()
	c.mu.Lock()
	defer c.mu.Unlock()
	if departed {
		c.departed = true
		return
	}
	if r.NumberNodes() > 1 || c.last == nil {
		c.last, c.departed = r.Clone(), false
	}
}

func (c *clusterRing) owner(id string) (notp.Node, bool) {
	c.mu.Lock()
	departed, last := c.departed, c.last
	c.mu.Unlock()
	if departed && last != nil {
		r := last.Clone()
		r.Remove(c.n.Self().ID)
		if n, ok := r.OwnerString(id); ok {
			return n, true
		}
	}
	return c.n.Ring().View().OwnerString(id)
}

func (c *clusterRing) moved() bool {
	v := c.n.Ring().View() // a new View (pointer) is published per change
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == c.seen {
		return false
	}
	c.seen = v
	return true
}

func (c *clusterRing) down(nodeID string) bool {
	h := c.n.Ring().Health(nodeID)
	return h == gossip.HealthDead || h == gossip.HealthLeft
}

func (c *clusterRing) watch(stop <-chan struct{}, changed func()) {
	events, cancel := c.n.Ring().Subscribe(64)
	defer cancel()
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.Kind {
			case gossip.EventSelfRemoved, gossip.EventLeft:
				c.update(true)
			case gossip.EventInserted, gossip.EventRemoved, gossip.EventUpdated, gossip.EventConflict:
				c.update(false)
			default:
				continue
			}
			changed()
		}
	}
}
