package chash

import (
	"iter"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/notp-go/notp"
)

// Owner returns the node owning key: the owner of the first token strictly
// greater than xxhash.Sum64(key), wrapping to the smallest token. A key
// hashing exactly to a token therefore belongs to the next token. It returns
// (Node{}, false) on an empty ring.
func (r *Ring) Owner(key []byte) (notp.Node, bool) {
	// A wrapper small enough to inline, so that the caller copies the
	// Node straight from the snapshot: a Node is too big to be returned
	// in registers without a round trip through the stack.
	if n := r.find(key); n != nil {
		return *n, true
	}
	return notp.Node{}, false
}

// OwnerString is [Ring.Owner] for a string key, without allocating.
func (r *Ring) OwnerString(key string) (notp.Node, bool) {
	if n := r.findString(key); n != nil {
		return *n, true
	}
	return notp.Node{}, false
}

// find returns a pointer to the owner of key in the current snapshot's
// node table (immutable), or nil on an empty ring.
func (r *Ring) find(key []byte) *notp.Node {
	h := xxhash.Sum64(key)
	s := r.load()
	if n := s.nodeFast(h); n != nil {
		return n
	}
	return s.nodeSlow(h)
}

// findString is find for a string key.
func (r *Ring) findString(key string) *notp.Node {
	h := xxhash.Sum64String(key)
	s := r.load()
	if n := s.nodeFast(h); n != nil {
		return n
	}
	return s.nodeSlow(h)
}

// RangeNext returns the preference list of key: its owner ([Ring.Owner])
// first, then the next distinct nodes clockwise. n is clamped to
// [Ring.NumberNodes]; n ≤ 0 or an empty ring gives an empty list. The
// conventional length is [Ring.PFactor]+1.
func (r *Ring) RangeNext(key []byte, n int) []notp.Node {
	return r.AppendRangeNext(nil, key, n)
}

// AppendRangeNext is [Ring.RangeNext] appending to dst; with a reused dst
// and n ≤ 8 it does not allocate.
func (r *Ring) AppendRangeNext(dst []notp.Node, key []byte, n int) []notp.Node {
	s := r.load()
	if n <= 0 || len(s.tokens) == 0 {
		return dst
	}
	n = min(n, len(s.nodes))
	return s.walk(dst, s.after(xxhash.Sum64(key)), 1, n, -1)
}

// RangePrev returns the owner of the last token strictly less than
// xxhash.Sum64(key) (wrapping to the largest token), then the next distinct
// nodes counter-clockwise. n is clamped as for [Ring.RangeNext].
func (r *Ring) RangePrev(key []byte, n int) []notp.Node {
	s := r.load()
	if n <= 0 || len(s.tokens) == 0 {
		return nil
	}
	n = min(n, len(s.nodes))
	return s.walk(nil, s.before(xxhash.Sum64(key)), -1, n, -1)
}

// Next returns up to n distinct other nodes met walking clockwise from the
// first virtual node (token ID+"_1") of the node with the given ID: its
// neighbours, the nodes that take over its keys. n is clamped to
// NumberNodes-1; an absent node, a ring of at most one node or n ≤ 0 gives
// an empty list. The conventional n is [Ring.PFactor].
func (r *Ring) Next(id string, n int) []notp.Node {
	return r.neighbours(id, n, 1)
}

// Prev is the mirror of [Ring.Next]: distinct other nodes met walking
// counter-clockwise from the node's first virtual node.
func (r *Ring) Prev(id string, n int) []notp.Node {
	return r.neighbours(id, n, -1)
}

func (r *Ring) neighbours(id string, n, dir int) []notp.Node {
	s := r.load()
	self, ok := s.byID[id]
	if !ok || n <= 0 || len(s.nodes) <= 1 {
		return nil
	}
	pos := s.position(Token(id, 1), id)
	if pos < 0 {
		return nil // unreachable: every node owns its first token
	}
	n = min(n, len(s.nodes)-1)
	return s.walk(nil, pos, dir, n, self)
}

// Get returns the stored node with the given ID.
func (r *Ring) Get(id string) (notp.Node, bool) {
	s := r.load()
	if o, ok := s.byID[id]; ok {
		return s.nodes[o], true
	}
	return notp.Node{}, false
}

// Has reports whether a node with the given ID is in the ring.
func (r *Ring) Has(id string) bool {
	_, ok := r.load().byID[id]
	return ok
}

// Size returns the number of tokens (virtual nodes).
func (r *Ring) Size() int { return len(r.load().tokens) }

// NumberNodes returns the number of distinct nodes.
func (r *Ring) NumberNodes() int { return len(r.load().nodes) }

// Weights returns a new map from node ID to its number of tokens.
func (r *Ring) Weights() map[string]int {
	s := r.load()
	w := make(map[string]int, len(s.nodes))
	for i, n := range s.nodes {
		w[n.ID] = s.weights[i]
	}
	return w
}

// Nodes returns the distinct nodes in ring order of first appearance (the
// order of their lowest tokens). The slice is the caller's.
func (r *Ring) Nodes() []notp.Node {
	return append([]notp.Node(nil), r.load().nodes...)
}

// All returns an iterator over the tokens and their owners in ring order
// (ascending token). It iterates over the snapshot current when called, so
// concurrent writes do not affect it.
func (r *Ring) All() iter.Seq2[uint64, notp.Node] {
	s := r.load()
	return func(yield func(uint64, notp.Node) bool) {
		for i, t := range s.tokens {
			if !yield(t, s.nodes[s.owners[i]]) {
				return
			}
		}
	}
}

// Shares returns each node's fraction of the 2^64 hash space: the sum of the
// arcs ending at its tokens (token i owns hashes in [token i-1, token i)).
// The fractions sum to 1 on a non-empty ring; an empty ring gives an empty
// map.
func (r *Ring) Shares() map[string]float64 {
	s := r.load()
	out := make(map[string]float64, len(s.nodes))
	switch len(s.tokens) {
	case 0:
		return out
	case 1:
		out[s.nodes[0].ID] = 1
		return out
	}
	last := s.tokens[len(s.tokens)-1]
	prev := last
	for i, t := range s.tokens {
		// Unsigned subtraction wraps modulo 2^64, which is the arc
		// length for the first token too.
		out[s.nodes[s.owners[i]].ID] += float64(t-prev) / (math.MaxUint64 + 1.0)
		prev = t
	}
	return out
}

// Equal reports whether r and other hold the same tokens owned by equal
// nodes. The factors are not compared.
func (r *Ring) Equal(other *Ring) bool {
	a, b := r.load(), other.load()
	if len(a.tokens) != len(b.tokens) || len(a.nodes) != len(b.nodes) {
		return false
	}
	for i, t := range a.tokens {
		if t != b.tokens[i] || a.nodes[a.owners[i]] != b.nodes[b.owners[i]] {
			return false
		}
	}
	return true
}
