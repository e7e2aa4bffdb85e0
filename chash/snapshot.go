package chash

import (
	"math"
	"math/bits"

	"github.com/google/btree"

	"github.com/notp-go/notp"
)

// Index sizing. The index has 2^k buckets with 2^k ≥ indexLoad·tokens, so
// about 1-e^(-1/indexLoad) ≈ 22% of buckets contain a token and need a scan;
// the rest answer a lookup from the bucket entry alone. maxIndexBits caps
// the index at 2^20 entries (8 MiB), reached beyond 256k tokens.
const (
	indexLoad    = 4
	maxIndexBits = 20
)

// snapshot is an immutable, lookup-optimised view of a ring. Readers load it
// atomically and never lock.
//
// tokens is sorted by (token, node ID) and owners[i] indexes nodes for
// tokens[i]; two MaxUint64 sentinels sit past len(tokens) (within cap) so
// the scan in after needs no bounds test for its first step.
//
// index is a table over the top k bits of the hash. Entry b holds, in its
// high 32 bits, the first position whose token is ≥ b<<(64-k) (the bucket's
// lower bound), and in its low 32 bits owner+1 when no token falls inside
// the bucket — then every hash in the bucket belongs to that owner and a
// lookup is one table read — or 0 when the bucket holds tokens and a short
// scan from the position is needed. No tree walk, no binary search.
type snapshot struct {
	tokens  []uint64
	owners  []int32
	nodes   []notp.Node // in ring order of first appearance
	weights []int       // parallel to nodes
	byID    map[string]int32
	shift   uint
	index   []uint64
}

var emptySnapshot = snapshot{tokens: make([]uint64, 0, 2), shift: 64, index: []uint64{0}}

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

func (s *snapshot) buildIndex() {
	k := min(bits.Len(uint(len(s.tokens)*indexLoad-1)), maxIndexBits)
	s.shift = uint(64 - k)
	s.index = make([]uint64, 1<<k)
	pos := 0
	for b := range s.index {
		lo := uint64(b) << s.shift // b = 0 when k = 0 (shift 64)
		for pos < len(s.tokens) && s.tokens[pos] < lo {
			pos++
		}
		e := uint64(pos) << 32
		hi := lo + (^uint64(0) >> (64 - s.shift)) // bucket's last hash (k = 0: MaxUint64)
		if pos == len(s.tokens) || s.tokens[pos] > hi {
			// No token inside the bucket: its hashes all go to the
			// first token past it, wrapping.
			e |= uint64(s.owners[pos%len(s.tokens)]) + 1
		}
		s.index[b] = e
	}
}

// after returns the position of the first token strictly greater than h,
// wrapping to 0. The ring must not be empty.
func (s *snapshot) after(h uint64) int {
	return s.scan(int(s.index[h>>s.shift]>>32), h)
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

// owner returns the index of the node owning hash h. The ring must not be
// empty.
func (s *snapshot) owner(h uint64) int32 {
	e := s.index[h>>s.shift]
	if o := uint32(e); o != 0 {
		return int32(o - 1)
	}
	return s.owners[s.scan(int(e>>32), h)]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// before returns the position of the last token strictly less than h,
// wrapping to the last token. The ring must not be empty.
func (s *snapshot) before(h uint64) int {
	tokens := s.tokens
	i := int(s.index[h>>s.shift] >> 32)
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
	for i := int(s.index[t>>s.shift] >> 32); i < len(s.tokens) && s.tokens[i] <= t; i++ {
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
	var small [8]int32
	seen := small[:0]
	var big []bool // for long lists, to keep the walk linear
	if n > len(small) {
		big = make([]bool, len(s.nodes))
	}
	pos, got := start, 0
	for range s.tokens {
		if got == n {
			break
		}
		o := s.owners[pos]
		if o != skip && !s.seen(seen, big, o) {
			if big != nil {
				big[o] = true
			} else {
				seen = append(seen, o)
			}
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

func (s *snapshot) seen(small []int32, big []bool, o int32) bool {
	if big != nil {
		return big[o]
	}
	for _, x := range small {
		if x == o {
			return true
		}
	}
	return false
}
