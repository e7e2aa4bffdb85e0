package chash

import (
	"math"
	"math/bits"
	"slices"

	"github.com/google/btree"

	"github.com/notp-go/notp"
)

// Index sizing. The lookup index has 2^k buckets with 2^k ≥ indexLoad·tokens,
// so a bucket holds λ ≤ 1/indexLoad tokens on average and only about
// 1-e^(-λ)(1+λ) ≤ 2.6% of buckets hold two or more (those take the slow
// path); maxIndexBits caps it at 2^20 entries (4 MiB), reached beyond 256k
// tokens. The position table (starts) has 2^(k-startsBits) entries, at most
// two per token.
const (
	indexLoad    = 4
	maxIndexBits = 20
	startsBits   = 1
)

// minFragBits is the fewest token bits an index entry keeps; rings whose
// owner fields would leave fewer (8192 nodes or more) index every bucket as
// slow.
const minFragBits = 6

// slowEntry is an index entry whose bucket takes the slow path: its owner
// fields are all ones, which no owner index reaches.
const slowEntry = ^uint32(0)

// snapshot is an immutable, lookup-optimised view of a ring. Readers load it
// atomically and never lock.
//
// tokens is sorted by (token, node ID) and owners[i] indexes nodes for
// tokens[i]; two MaxUint64 sentinels sit past len(tokens) (within cap) so
// the scan in after needs no bounds test for its first step.
//
// index is a table over the top k bits of the hash (bucket b holds the
// hashes whose top k bits are b). Its 32-bit entries answer [Ring.Owner] for
// most hashes without touching tokens or owners. With w = ownerBits, the
// bits of an entry are, from the top:
//
//	32-2w bits  f: the bits below the top k of the bucket's one token
//	w bits      B: owner of the token after that one (wrapping)
//	w bits      A: owner of the bucket's token, or of the first token past
//	            an empty bucket (then B = A and f = 0)
//
// The same 32-2w bits of a hash (after the top k) compare below f for a
// hash below the bucket's token, which therefore owns it (A); above f, the
// hash is above the token and the next token owns it (B). Equal bits, a
// bucket holding two or more tokens (A = B = ownerMask), rings of 8192 nodes
// or more and the empty ring take the slow path: a scan of tokens from
// starts, the table of the first position at or after each coarser bucket
// of the top k-startsBits bits, which also serves RangeNext, RangePrev and
// Next/Prev. Memory: 4 bytes × 4–8 index entries plus 4 bytes × 1–2 starts
// per token (24–48 bytes), on top of its 12 bytes in tokens and owners.
type snapshot struct {
	tokens    []uint64
	owners    []int32
	nodes     []notp.Node // in ring order of first appearance
	weights   []int       // parallel to nodes
	byID      map[string]int32
	shift     uint // 64-k: the bucket of h is h>>shift (never 64: k ≥ 1)
	fshift    uint // shift-32: uint32(h>>fshift) are the 32 bits below the top k
	ownerBits uint // w: bits of an owner field, bits.Len(len(nodes))
	fragShift uint // 2w: an entry's f is entry>>fragShift
	ownerMask uint32
	index     []uint32
	cshift    uint // 64-(k-startsBits); 64 (any h → 0) when k = startsBits
	starts    []uint32
}

// emptySnapshot is the view of an empty ring: its two index entries are
// slow, and the slow path checks for no tokens.
var emptySnapshot = snapshot{
	tokens:    make([]uint64, 0, 2),
	shift:     63,
	fshift:    31,
	ownerBits: 1,
	fragShift: 2,
	ownerMask: 1,
	index:     []uint32{slowEntry, slowEntry},
	cshift:    64,
	starts:    []uint32{0},
}

func buildSnapshot(tree *btree.BTreeG[item], nodes map[string]notp.Node) *snapshot {
	n := tree.Len()
	if n == 0 {
		return &emptySnapshot
	}
	s := &snapshot{
		tokens: make([]uint64, 0, n+2), // +2: sentinels for after
		owners: make([]int32, 0, n),
		byID:   make(map[string]int32, len(nodes)),
	}
	tree.Ascend(func(it item) bool {
		o, ok := s.byID[it.id]
		if !ok {
			o = int32(len(s.nodes))
			s.byID[it.id] = o
			s.nodes = append(s.nodes, nodes[it.id])
			s.weights = append(s.weights, 0)
		}
		s.weights[o]++
		s.tokens = append(s.tokens, it.token)
		s.owners = append(s.owners, o)
		return true
	})
	s.tokens = append(s.tokens, math.MaxUint64, math.MaxUint64)[:n]
	s.buildIndex()
	return s
}

// buildIndex fills index and starts. The ring must not be empty.
func (s *snapshot) buildIndex() {
	n := len(s.tokens)
	k := min(bits.Len(uint(n*indexLoad-1)), maxIndexBits) // ≥ startsBits: n*indexLoad ≥ 4
	s.shift = uint(64 - k)
	s.fshift = s.shift - 32
	w := uint(bits.Len(uint(len(s.nodes)))) // ownerMask = 2^w-1 ≥ len(nodes)
	s.ownerBits, s.fragShift, s.ownerMask = w, 2*w, 1<<w-1
	fast := 32-2*w >= minFragBits
	s.index = make([]uint32, 1<<k)
	pos := 0 // first token ≥ the bucket's lowest hash
	for b := range s.index {
		hi := uint64(b)<<s.shift | ^uint64(0)>>k // the bucket's highest hash
		end := pos
		for end < n && s.tokens[end] <= hi {
			end++
		}
		e := slowEntry
		switch {
		case !fast || end-pos > 1:
		case end == pos: // no token: every hash goes to the next one
			o := uint32(s.owners[pos%n])
			e = o<<w | o
		default: // one token
			f := uint32(s.tokens[pos]>>s.fshift) >> s.fragShift << s.fragShift
			e = f | uint32(s.owners[(pos+1)%n])<<w | uint32(s.owners[pos])
		}
		s.index[b] = e
		pos = end
	}

	kc := k - startsBits
	s.cshift = uint(64 - kc)
	s.starts = make([]uint32, 1<<kc)
	pos = 0
	for c := range s.starts {
		lo := uint64(c) << s.cshift // 0 when cshift = 64
		for pos < n && s.tokens[pos] < lo {
			pos++
		}
		s.starts[c] = uint32(pos)
	}
}

// node returns the owner of hash h — the owner of the first token strictly
// greater than h, wrapping — as a pointer into nodes, or nil on an empty
// ring. [Ring.Owner] is this, inlined.
func (s *snapshot) node(h uint64) *notp.Node {
	if n := s.nodeFast(h); n != nil {
		return n
	}
	return s.nodeSlow(h)
}

// nodeFast is node answered from the index entry alone, or nil when the hash
// needs the slow path (see snapshot). It must stay small enough to inline
// into find: go1.26 rates it at 80, the inliner's limit (check with
// go build -gcflags=-m).
func (s *snapshot) nodeFast(h uint64) *notp.Node {
	e := s.index[h>>(s.shift&63)]
	f, ef := uint32(h>>(s.fshift&63))>>(s.fragShift&31), e>>(s.fragShift&31)
	o := e >> (s.ownerBits * b2u(f > ef) & 31) & s.ownerMask // A, or B above the token; no branch
	if o == s.ownerMask || f == ef {
		return nil
	}
	return &s.nodes[o]
}

// nodeSlow is the slow path of node: a scan of tokens from starts. It
// returns nil on an empty ring. It stays out of line so that the callers'
// fast path stays small.
//
//go:noinline
func (s *snapshot) nodeSlow(h uint64) *notp.Node {
	if len(s.tokens) == 0 {
		return nil
	}
	return &s.nodes[s.owners[s.after(h)]]
}

// after returns the position of the first token strictly greater than h,
// wrapping to 0. The ring must not be empty.
func (s *snapshot) after(h uint64) int {
	return s.scan(int(s.starts[h>>s.cshift]), h)
}

// scan returns the position of the first token strictly greater than h at
// or after position i, wrapping to 0.
func (s *snapshot) scan(i int, h uint64) int {
	tokens := s.tokens[:len(s.tokens)+2] // two MaxUint64 sentinels follow
	// The bucket usually holds zero or one token below h: take that step
	// without a branch (the outcome is a coin toss the predictor would
	// miss), then finish with a loop that rarely runs.
	i += b2i(tokens[i] <= h)
	for i < len(s.tokens) && tokens[i] <= h {
		i++
	}
	if i >= len(s.tokens) {
		i = 0
	}
	return i
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func b2u(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// before returns the position of the last token strictly less than h,
// wrapping to the last token. The ring must not be empty.
func (s *snapshot) before(h uint64) int {
	tokens := s.tokens
	i := int(s.starts[h>>s.cshift])
	for i < len(tokens) && tokens[i] < h {
		i++
	}
	// i is the first token ≥ h; the one before it is the last < h.
	if i == 0 {
		return len(tokens) - 1
	}
	return i - 1
}

// position returns the position of token t owned by id, or -1.
func (s *snapshot) position(t uint64, id string) int {
	if len(s.tokens) == 0 {
		return -1
	}
	for i := int(s.starts[t>>s.cshift]); i < len(s.tokens) && s.tokens[i] <= t; i++ {
		if s.tokens[i] == t && s.nodes[s.owners[i]].ID == id {
			return i
		}
	}
	return -1
}

func (s *snapshot) has(t uint64, id string) bool { return s.position(t, id) >= 0 }

// walk appends to dst up to n distinct nodes met walking from position start
// in direction dir (+1 clockwise, -1 counter-clockwise), skipping the node
// with index skip (-1 skips none). It stops after one full turn.
func (s *snapshot) walk(dst []notp.Node, start, dir, n int, skip int32) []notp.Node {
	if n <= smallWalk {
		return s.walkSmall(dst, start, dir, n, skip)
	}
	seen := make([]bool, len(s.nodes)) // keeps a long walk linear
	pos, got := start, 0
	for range s.tokens {
		if got == n {
			break
		}
		if o := s.owners[pos]; o != skip && !seen[o] {
			seen[o] = true
			dst = append(dst, s.nodes[o])
			got++
		}
		pos += dir
		if pos == len(s.tokens) {
			pos = 0
		} else if pos < 0 {
			pos = len(s.tokens) - 1
		}
	}
	return dst
}

// smallWalk is the longest list walkSmall makes.
const smallWalk = 8

// walkSmall is walk for n ≤ smallWalk (preference lists): the nodes met so
// far are kept in an array on the stack, and the loop is kept tight.
func (s *snapshot) walkSmall(dst []notp.Node, pos, dir, n int, skip int32) []notp.Node {
	if n <= 0 {
		return dst
	}
	// Room for n first, then plain stores: append would copy each Node
	// through a stack temporary, which costs a store-forwarding stall.
	base := len(dst)
	dst = slices.Grow(dst, n)[:base+n]
	out := dst[base:]
	var seen [smallWalk]int32
	got := 0
	owners := s.owners
	last := len(owners) - 1
	for range owners {
		o := owners[pos]
		dup := o == skip
		for _, x := range seen[:got] {
			dup = dup || x == o
		}
		if !dup {
			seen[got] = o
			out[got] = s.nodes[o]
			if got++; got == len(out) {
				break
			}
		}
		pos += dir
		if pos > last {
			pos = 0
		} else if pos < 0 {
			pos = last
		}
	}
	return dst[:base+got]
}
