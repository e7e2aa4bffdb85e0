package gossip

import (
	"iter"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
)

// View is a read-only snapshot of a [Ring]'s hash ring: who owns which
// keys at the moment [Ring.View] was called. It never changes (every ring
// change publishes a new one), so a caller may keep it, share it between
// goroutines and answer many lookups from one consistent ring. The zero
// View is an empty ring.
type View struct {
	r *chash.Ring // published by the Ring and never modified afterwards
}

// NewView returns a View of a copy of r: later changes to r do not show in
// it. It serves tests and what-if placements; a Ring's own views come from
// [Ring.View] without a copy.
func NewView(r *chash.Ring) View { return View{r: r.Clone()} }

// ring returns the snapshot's chash ring (an empty one for the zero View).
func (v View) ring() *chash.Ring {
	if v.r == nil {
		return emptyRing
	}
	return v.r
}

// emptyRing answers the zero View's lookups; nothing writes to it.
var emptyRing = chash.New(0, 0)

// Owner returns the node owning key alone (see [chash.Ring.Owner]), false
// on an empty ring.
func (v View) Owner(key []byte) (notp.Node, bool) { return v.ring().Owner(key) }

// OwnerString is [View.Owner] for a string key, without allocating.
func (v View) OwnerString(key string) (notp.Node, bool) { return v.ring().OwnerString(key) }

// PreferenceList returns the n nodes that hold key: its owner then the
// next distinct nodes clockwise from key's position (see
// [chash.Ring.RangeNext]). n ≤ 0 means PFactor+1; n is clamped to the
// number of nodes, and an empty ring gives nil.
func (v View) PreferenceList(key []byte, n int) []notp.Node {
	r := v.ring()
	if n <= 0 {
		n = r.PFactor() + 1
	}
	return r.RangeNext(key, n)
}

// AppendPreferenceList is [View.PreferenceList] appending to dst (n ≤ 0
// appends nothing); with a reused dst and n ≤ 8 it does not allocate.
func (v View) AppendPreferenceList(dst []notp.Node, key []byte, n int) []notp.Node {
	return v.ring().AppendRangeNext(dst, key, n)
}

// Neighbours returns up to n distinct other nodes met walking clockwise
// from the first token of the node with this id: the nodes that take over
// its keys (see [chash.Ring.Next]). n ≤ 0 means PFactor.
func (v View) Neighbours(id string, n int) []notp.Node {
	r := v.ring()
	if n <= 0 {
		n = r.PFactor()
	}
	return r.Next(id, n)
}

// Get returns the node with this id.
func (v View) Get(id string) (notp.Node, bool) { return v.ring().Get(id) }

// Has reports whether a node with this id is in the ring.
func (v View) Has(id string) bool { return v.ring().Has(id) }

// Nodes returns the distinct nodes in ring order of first appearance.
func (v View) Nodes() []notp.Node { return v.ring().Nodes() }

// NumberNodes returns the number of distinct nodes.
func (v View) NumberNodes() int { return v.ring().NumberNodes() }

// Size returns the number of tokens (virtual nodes).
func (v View) Size() int { return v.ring().Size() }

// Weights returns a new map from node ID to its number of tokens.
func (v View) Weights() map[string]int { return v.ring().Weights() }

// Shares returns each node's fraction of the hash space.
func (v View) Shares() map[string]float64 { return v.ring().Shares() }

// All returns an iterator over the tokens and their owners in ring order.
func (v View) All() iter.Seq2[uint64, notp.Node] { return v.ring().All() }

// Equal reports whether v and other hold the same tokens owned by equal
// nodes.
func (v View) Equal(other View) bool { return v.ring().Equal(other.ring()) }

// Clone returns a mutable copy of the snapshot, for a caller that wants
// to try changes (what-if placements) without touching the Ring.
func (v View) Clone() *chash.Ring { return v.ring().Clone() }
