package chash

import (
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/notp-go/notp"
)

// Weighted is a node with its weight (tokens), an element of a bulk change
// ([Build], [Ring.Apply]). A weight ≤ 0 means the ring's rfactor.
type Weighted struct {
	Node   notp.Node
	Weight int
}

// Build returns a ring of nodes built at once: the tokens of every node are
// hashed, sorted once and published in one snapshot, so building a ring of
// N nodes of w tokens costs O(N·w·log(N·w)) instead of the O(N²·w) of N
// Inserts (each of which publishes a snapshot of every token so far). A
// later element with the ID of an earlier one replaces it, as [Ring.Update]
// would; elements with an empty ID are ignored. rfactor and pfactor are as
// in [New].
func Build(rfactor, pfactor int, nodes []Weighted) *Ring {
	r := New(rfactor, pfactor)
	r.Apply(nil, nodes)
	return r
}

// Apply changes the ring in one step: it removes the nodes whose IDs are in
// remove (absent ones are ignored), then sets every node of set as
// [Ring.Update] does (replacing a present node's address and weight,
// inserting an absent one; an empty ID is ignored), and publishes one
// snapshot for the whole change. A change of k tokens on a ring of n costs
// O(k·log n + n), where as many single-node calls would publish up to k/w
// snapshots of O(n) each.
func (r *Ring) Apply(remove []string, set []Weighted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	changed := false
	for _, id := range remove {
		if _, ok := r.nodes[id]; ok {
			r.removeLocked(id)
			changed = true
		}
	}
	// The last element for an ID wins; earlier ones are skipped.
	last := make(map[string]int, len(set))
	for i, w := range set {
		if w.Node.ID != "" {
			last[w.Node.ID] = i
		}
	}
	total := 0
	for _, w := range set {
		total += max(w.Weight, 1)
	}
	items := make([]item, 0, total)
	for i, w := range set {
		id := w.Node.ID
		if id == "" || last[id] != i {
			continue
		}
		if _, ok := r.nodes[id]; ok {
			r.removeLocked(id)
		}
		weight := w.Weight
		if weight <= 0 {
			weight = r.rfactorLocked()
		}
		items = appendTokens(items, id, weight)
		r.nodes[id] = w.Node
		r.weights[id] = 0
		changed = true
	}
	// Sorted insertion walks the tree in order, so consecutive inserts
	// touch the same leaves.
	slices.SortFunc(items, compareItems)
	for _, it := range items {
		if _, dup := r.tree.ReplaceOrInsert(it); !dup {
			r.weights[it.id]++ // a self-collision of two vnodes counts once
		}
	}
	if changed {
		r.publishLocked()
	}
}

// appendTokens appends the weight tokens of the node with the given ID.
func appendTokens(dst []item, id string, weight int) []item {
	buf := make([]byte, 0, len(id)+24)
	for i := 1; i <= weight; i++ {
		buf = tokenName(buf[:0], id, i)
		dst = append(dst, item{xxhash.Sum64(buf), id})
	}
	return dst
}

func compareItems(a, b item) int {
	if a.token != b.token {
		if a.token < b.token {
			return -1
		}
		return 1
	}
	return strings.Compare(a.id, b.id)
}
