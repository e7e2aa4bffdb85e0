package chash

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/google/btree"

	"github.com/notp-go/notp"
)

// DefaultRFactor is the number of virtual nodes (tokens) [Ring.Insert] gives
// a node when called with a weight ≤ 0, and the rfactor [New] uses for a
// value ≤ 0. Despite the name inherited from notp it is not a replication
// factor. 128 tokens is the smallest power of two that splits the key space
// near-evenly: a node's share deviates from the mean by about
// 1/sqrt(128) ≈ 9% (one standard deviation), three nodes named a, b, c or
// node-1..node-3 own a third each within 5%, and the most loaded of 64
// nodes holds at most about 1.25× the mean. notp's default of 3 gave the
// demo's three nodes 16%, 30% and 54%.
const DefaultRFactor = 128

// DefaultPFactor is the pfactor [New] uses for a value ≤ 0: the default
// number of neighbours a caller asks [Ring.Next] or [Ring.Prev] for, and
// DefaultPFactor+1 the default length of a per-key preference list
// ([Ring.RangeNext]).
const DefaultPFactor = 2

// btreeDegree is the degree of the token tree. 32 keeps the tree shallow for
// rings of tens of thousands of tokens while copy-on-write stays cheap.
const btreeDegree = 32

// item is one token in the tree. Ties between tokens of different nodes
// (astronomically rare with a 64-bit hash) are broken by node ID so that the
// ring order is a total, deterministic order.
type item struct {
	token uint64
	id    string
}

func itemLess(a, b item) bool {
	return a.token < b.token || (a.token == b.token && a.id < b.id)
}

// Ring is a consistent-hash ring of [notp.Node] values keyed by node ID.
// A node of weight w owns the w tokens xxhash(ID+"_"+i), i = 1..w; a key is
// owned by the first token strictly greater than xxhash(key), wrapping.
//
// The zero Ring is an empty ring with the default factors. A Ring must not be
// copied after first use; use [Ring.Clone]. All methods are safe for
// concurrent use (see the package documentation).
type Ring struct {
	mu      sync.Mutex // serialises writers; readers never take it
	rfactor int
	pfactor int
	tree    *btree.BTreeG[item] // source of truth for writers; nil = empty
	nodes   map[string]notp.Node
	weights map[string]int // tokens per node ID, always ≥ 1

	snap atomic.Pointer[snapshot] // immutable view for readers; nil = empty
}

// New returns an empty ring. rfactor is the default weight (tokens per node)
// and pfactor the default neighbour count; values ≤ 0 select
// [DefaultRFactor] and [DefaultPFactor].
func New(rfactor, pfactor int) *Ring {
	if rfactor <= 0 {
		rfactor = DefaultRFactor
	}
	if pfactor <= 0 {
		pfactor = DefaultPFactor
	}
	return &Ring{rfactor: rfactor, pfactor: pfactor}
}

// RFactor returns the default weight [Ring.Insert] uses for a weight ≤ 0.
func (r *Ring) RFactor() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rfactorLocked()
}

// PFactor returns the default neighbour count; PFactor()+1 is the
// conventional length of a per-key preference list.
func (r *Ring) PFactor() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pfactor <= 0 {
		return DefaultPFactor
	}
	return r.pfactor
}

func (r *Ring) rfactorLocked() int {
	if r.rfactor <= 0 {
		return DefaultRFactor
	}
	return r.rfactor
}

// initLocked makes the writer state usable (the zero Ring has none).
func (r *Ring) initLocked() {
	if r.tree == nil {
		r.tree = btree.NewG(btreeDegree, itemLess)
		r.nodes = make(map[string]notp.Node)
		r.weights = make(map[string]int)
	}
}

// Token returns the token of virtual node i (1-based) of the node with the
// given ID: xxhash.Sum64String(id + "_" + strconv.Itoa(i)).
func Token(id string, i int) uint64 {
	var buf [64]byte
	return xxhash.Sum64(tokenName(buf[:0], id, i))
}

func tokenName(dst []byte, id string, i int) []byte {
	dst = append(dst, id...)
	dst = append(dst, '_')
	return strconv.AppendInt(dst, int64(i), 10)
}

// Insert adds node with weight tokens (weight ≤ 0 means [Ring.RFactor]).
// It is a no-op if a node with the same ID is already present, even if its
// host or port differ (use [Ring.Update] to change them), and for a node
// with an empty ID, which no encoded ring may carry.
func (r *Ring) Insert(node notp.Node, weight int) { r.put(node, weight, false) }

// put inserts node with weight tokens unless its ID is empty. A node
// already present with that ID is replaced when replace is set ([Ring.Update])
// and kept otherwise ([Ring.Insert]).
func (r *Ring) put(node notp.Node, weight int, replace bool) {
	if node.ID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	if _, ok := r.nodes[node.ID]; ok {
		if !replace {
			return
		}
		r.removeLocked(node.ID)
	}
	r.insertLocked(node, weight)
	r.publishLocked()
}

func (r *Ring) insertLocked(node notp.Node, weight int) {
	if weight <= 0 {
		weight = r.rfactorLocked()
	}
	buf := make([]byte, 0, len(node.ID)+24)
	added := 0
	for i := 1; i <= weight; i++ {
		buf = tokenName(buf[:0], node.ID, i)
		if _, dup := r.tree.ReplaceOrInsert(item{xxhash.Sum64(buf), node.ID}); !dup {
			added++ // a self-collision of two vnodes would count once
		}
	}
	r.nodes[node.ID] = node
	r.weights[node.ID] = added
}

// Remove deletes the node with the given ID and all its tokens; a no-op if
// it is absent.
func (r *Ring) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tree == nil {
		return
	}
	if _, ok := r.nodes[id]; !ok {
		return
	}
	r.removeLocked(id)
	r.publishLocked()
}

func (r *Ring) removeLocked(id string) {
	buf := make([]byte, 0, len(id)+24)
	// Tokens are 1..w by construction (Insert, Merge and Intersect keep
	// every node's tokens a prefix 1..w), so the weight bounds the loop.
	for i := 1; i <= r.weights[id]; i++ {
		buf = tokenName(buf[:0], id, i)
		r.tree.Delete(item{xxhash.Sum64(buf), id})
	}
	delete(r.nodes, id)
	delete(r.weights, id)
}

// Update replaces the node with node.ID by node with weight tokens (weight
// ≤ 0 means [Ring.RFactor]), so it can change the node's host, port and
// weight; it inserts the node if absent. A node with an empty ID is ignored.
func (r *Ring) Update(node notp.Node, weight int) { r.put(node, weight, true) }

// Merge adds to r every token of other that r lacks (a token-level union).
// For a node present in both rings the local node value is kept; weights are
// recomputed from the token counts. Merging a ring into itself is a no-op.
func (r *Ring) Merge(other *Ring) {
	os := other.load() // before locking r: other may be r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	changed := false
	for i, t := range os.tokens {
		n := os.nodes[os.owners[i]]
		it := item{t, n.ID}
		if r.tree.Has(it) {
			continue
		}
		r.tree.ReplaceOrInsert(it)
		r.weights[n.ID]++
		if _, ok := r.nodes[n.ID]; !ok {
			r.nodes[n.ID] = n
		}
		changed = true
	}
	if changed {
		r.publishLocked()
	}
}

// Intersect keeps only the tokens of r that other also has (same token, same
// node ID); local node values are kept and weights recomputed. Nodes left
// without tokens are removed.
func (r *Ring) Intersect(other *Ring) {
	os := other.load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tree == nil {
		return
	}
	var drop []item
	r.tree.Ascend(func(it item) bool {
		if !os.has(it.token, it.id) {
			drop = append(drop, it)
		}
		return true
	})
	if len(drop) == 0 {
		return
	}
	for _, it := range drop {
		r.tree.Delete(it)
		if r.weights[it.id]--; r.weights[it.id] == 0 {
			delete(r.weights, it.id)
			delete(r.nodes, it.id)
		}
	}
	r.publishLocked()
}

// Clone returns an independent copy of r. It is cheap: the token tree is
// cloned copy-on-write and the read snapshot is shared until either ring
// changes, so a caller can keep the "previous ring" of a change for free.
func (r *Ring) Clone() *Ring {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &Ring{rfactor: r.rfactor, pfactor: r.pfactor}
	if r.tree != nil {
		c.tree = r.tree.Clone()
		c.nodes = make(map[string]notp.Node, len(r.nodes))
		c.weights = make(map[string]int, len(r.weights))
		for id, n := range r.nodes {
			c.nodes[id] = n
		}
		for id, w := range r.weights {
			c.weights[id] = w
		}
	}
	c.snap.Store(r.snap.Load())
	return c
}

// publishLocked rebuilds the read snapshot from the writer state and makes
// it visible to readers. Writes are rare (membership changes) and cost
// O(tokens); reads never wait for them.
func (r *Ring) publishLocked() {
	r.snap.Store(buildSnapshot(r.tree, r.nodes))
}

// load returns the current read snapshot (never nil).
func (r *Ring) load() *snapshot {
	if s := r.snap.Load(); s != nil {
		return s
	}
	return &emptySnapshot
}
