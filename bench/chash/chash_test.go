// Package chashbench compares chash.Ring with other consistent-hash choices
// for Go on the same keys and member counts. Run from the bench module:
//
//	go test -run '^$' -bench . -benchmem ./chash/
package chashbench

import (
	"fmt"
	"sort"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/dgryski/go-jump"
	"github.com/golang/groupcache/consistenthash"
	"github.com/stathat/consistent"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
)

const vnodes = 64 // tokens (replicas) per member for every ring

var memberCounts = []int{8, 64, 512}

// keys are 4096 pre-built keys, as bytes and as strings so that no
// implementation pays for a conversion; benchmarks rotate through them.
var keys, keyStrings = func() ([][]byte, []string) {
	b := make([][]byte, 4096)
	s := make([]string, 4096)
	for i := range b {
		s[i] = fmt.Sprintf("user:%08d:session", i*7919)
		b[i] = []byte(s[i])
	}
	return b, s
}()

func memberID(i int) string { return fmt.Sprintf("node-%03d", i) }

var (
	sinkNode notp.Node
	sinkStr  string
	sinkInt  int
	sinkU64  uint64
)

func notpRing(members int) *chash.Ring { return notpRingWeight(members, vnodes) }

func notpRingWeight(members, weight int) *chash.Ring {
	r := chash.New(weight, 2)
	for i := range members {
		r.Insert(notp.Node{ID: memberID(i), Host: "10.0.0.1", Port: 7000 + i}, 0)
	}
	return r
}

// sortedRing is the plain baseline: xxhash tokens in a sorted slice and
// sort.Search for the first token strictly greater than the key's hash.
type sortedRing struct {
	tokens []uint64
	owners []string
}

func newSortedRing(members int) *sortedRing {
	type tok struct {
		t  uint64
		id string
	}
	var toks []tok
	for i := range members {
		for v := 1; v <= vnodes; v++ {
			toks = append(toks, tok{xxhash.Sum64String(memberID(i) + "_" + strconv.Itoa(v)), memberID(i)})
		}
	}
	sort.Slice(toks, func(a, b int) bool { return toks[a].t < toks[b].t })
	r := &sortedRing{}
	for _, t := range toks {
		r.tokens = append(r.tokens, t.t)
		r.owners = append(r.owners, t.id)
	}
	return r
}

func (r *sortedRing) get(key []byte) string {
	h := xxhash.Sum64(key)
	i := sort.Search(len(r.tokens), func(i int) bool { return r.tokens[i] > h })
	if i == len(r.tokens) {
		i = 0
	}
	return r.owners[i]
}

func BenchmarkOwner(b *testing.B) {
	for _, m := range memberCounts {
		name := "members=" + strconv.Itoa(m)
		b.Run("notp/"+name, func(b *testing.B) {
			r := notpRing(m)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkNode, _ = r.Owner(keys[i&4095])
				i++
			}
		})
		b.Run("notp-default/"+name, func(b *testing.B) {
			r := notpRingWeight(m, 0) // chash.DefaultRFactor tokens per member
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkNode, _ = r.Owner(keys[i&4095])
				i++
			}
		})
		b.Run("notp-weight3/"+name, func(b *testing.B) {
			r := notpRingWeight(m, 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkNode, _ = r.Owner(keys[i&4095])
				i++
			}
		})
		b.Run("notp-rangenext3/"+name, func(b *testing.B) {
			r := notpRing(m)
			buf := make([]notp.Node, 0, 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf = r.AppendRangeNext(buf[:0], keys[i&4095], 3)
				i++
			}
		})
		b.Run("stathat/"+name, func(b *testing.B) {
			c := consistent.New()
			c.NumberOfReplicas = vnodes
			for i := range m {
				c.Add(memberID(i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkStr, _ = c.Get(keyStrings[i&4095])
				i++
			}
		})
		b.Run("groupcache/"+name, func(b *testing.B) {
			c := consistenthash.New(vnodes, nil)
			for i := range m {
				c.Add(memberID(i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkStr = c.Get(keyStrings[i&4095])
				i++
			}
		})
		b.Run("jump/"+name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkInt = int(jump.Hash(xxhash.Sum64(keys[i&4095]), m))
				i++
			}
		})
		b.Run("xxhash-only/"+name, func(b *testing.B) {
			// The floor: hashing the key, which every ring here does.
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkU64 = xxhash.Sum64(keys[i&4095])
				i++
			}
		})
		b.Run("sorted-slice/"+name, func(b *testing.B) {
			r := newSortedRing(m)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkStr = r.get(keys[i&4095])
				i++
			}
		})
	}
}

// TestSameOwners checks that the baseline is the same ring as chash.Ring, so
// the comparison is like for like.
func TestSameOwners(t *testing.T) {
	r, s := notpRing(64), newSortedRing(64)
	for _, k := range keys {
		if got, _ := r.Owner(k); got.ID != s.get(k) {
			t.Fatalf("key %q: chash %s, baseline %s", k, got.ID, s.get(k))
		}
	}
}
