package dlm

// The DLM's uses of the cluster's ring, kept in this one file.

import (
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/gossip"
)

// ringView is what the client needs from the ring: the preference list of
// a lock ID and whether the failure detector has given up on a node.
type ringView interface {
	replicas(id string, n int) []notp.Node
	down(nodeID string) bool
}

type clusterRing struct{ n *cluster.Node }

// replicas is the ID's preference list: its owner, then the next distinct
// nodes clockwise, n in all.
func (c clusterRing) replicas(id string, n int) []notp.Node {
	return c.n.Ring().PreferenceList([]byte(id), n)
}

// down reports a node memberlist declared dead or that left it.
func (c clusterRing) down(nodeID string) bool {
	h := c.n.Ring().Health(nodeID)
	return h == gossip.HealthDead || h == gossip.HealthLeft
}
