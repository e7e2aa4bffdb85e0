package chash

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/google/btree"

	"github.com/notp-go/notp"
)

// naive is the reference model: the sorted token list and linear searches.
type naive []tok

func (m naive) after(h uint64) int {
	for i, t := range m {
		if t.t > h {
			return i
		}
	}
	return 0
}

// search is after by binary search, for the models of large rings.
func (m naive) search(h uint64) int {
	return sort.Search(len(m), func(i int) bool { return m[i].t > h }) % len(m)
}

func (m naive) before(h uint64) int {
	for i := len(m) - 1; i >= 0; i-- {
		if m[i].t < h {
			return i
		}
	}
	return len(m) - 1
}

func (m naive) walk(start, dir, n int, skip string) []string {
	var out []string
	for step := 0; step < len(m) && len(out) < n; step++ {
		id := m[((start+dir*step)%len(m)+len(m))%len(m)].id
		if id != skip && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// TestPropertyAgainstModel compares Owner, RangeNext, RangePrev, Next and
// Prev with the naive model on random rings and keys.
func TestPropertyAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 60 {
		r := New(1+rng.IntN(5), 1+rng.IntN(3))
		nodes := 1 + rng.IntN(20)
		for i := range nodes {
			r.Insert(nd(fmt.Sprintf("t%d-n%d", trial, i)), rng.IntN(12)) // 0 → rfactor
		}
		if trial%3 == 0 { // exercise removal and update paths too
			r.Remove(fmt.Sprintf("t%d-n0", trial))
			r.Update(nd(fmt.Sprintf("t%d-n1", trial)), 1+rng.IntN(20))
		}
		m := naive(modelTokens(r.Weights()))
		if len(m) == 0 {
			continue
		}
		for k := range 200 {
			key := fmt.Appendf(nil, "key-%d-%d", trial, k)
			h := xxhash.Sum64(key)
			if k%50 == 0 { // keys exactly on tokens
				x := m[rng.IntN(len(m))]
				key = vnodeKey(x.id, x.i)
				h = x.t
			}
			n := rng.IntN(r.NumberNodes() + 3)
			if got, _ := r.Owner(key); got.ID != m[m.after(h)].id {
				t.Fatalf("trial %d: Owner(%q) = %s, want %s", trial, key, got.ID, m[m.after(h)].id)
			}
			if got, _ := r.OwnerString(string(key)); got.ID != m[m.after(h)].id {
				t.Fatalf("trial %d: OwnerString(%q) = %s, want %s", trial, key, got.ID, m[m.after(h)].id)
			}
			if got, want := ids(r.RangeNext(key, n)), m.walk(m.after(h), 1, n, ""); !slices.Equal(got, want) {
				t.Fatalf("trial %d: RangeNext(%q,%d) = %v, want %v", trial, key, n, got, want)
			}
			if got, want := ids(r.RangePrev(key, n)), m.walk(m.before(h), -1, n, ""); !slices.Equal(got, want) {
				t.Fatalf("trial %d: RangePrev(%q,%d) = %v, want %v", trial, key, n, got, want)
			}
		}
		for _, node := range r.Nodes() {
			first := slices.IndexFunc(m, func(x tok) bool { return x.id == node.ID && x.i == 1 })
			n := 1 + rng.IntN(r.NumberNodes()+2)
			if got, want := ids(r.Next(node.ID, n)), m.walk(first, 1, min(n, r.NumberNodes()-1), node.ID); !slices.Equal(got, want) {
				t.Fatalf("Next(%s,%d) = %v, want %v", node.ID, n, got, want)
			}
			if got, want := ids(r.Prev(node.ID, n)), m.walk(first, -1, min(n, r.NumberNodes()-1), node.ID); !slices.Equal(got, want) {
				t.Fatalf("Prev(%s,%d) = %v, want %v", node.ID, n, got, want)
			}
		}
	}
}

// TestSnapshotIndexEdges drives the lookup index with hand-made tokens that
// real hashes never produce: ties between nodes, crowded buckets, and the
// extremes 0 and MaxUint64, against the naive model.
func TestSnapshotIndexEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		tree := btree.NewG(btreeDegree, itemLess)
		nodes := map[string]notp.Node{}
		for range 1 + rng.IntN(40) {
			id := fmt.Sprint("n", rng.IntN(6))
			nodes[id] = nd(id)
			var tk uint64
			switch rng.IntN(4) {
			case 0:
				tk = uint64(rng.IntN(8)) // crowded low bucket, ties
			case 1:
				tk = math.MaxUint64 - uint64(rng.IntN(3))
			default:
				tk = rng.Uint64()
			}
			tree.ReplaceOrInsert(item{tk, id})
		}
		s := buildSnapshot(tree, nodes)
		var m naive
		tree.Ascend(func(it item) bool { m = append(m, tok{t: it.token, id: it.id}); return true })
		probes := []uint64{0, 1, 7, 8, math.MaxUint64, math.MaxUint64 - 1}
		for _, x := range m {
			probes = append(probes, x.t, x.t-1, x.t+1)
		}
		for range 20 {
			probes = append(probes, rng.Uint64())
		}
		for _, h := range probes {
			if got, want := s.after(h), m.after(h); got != want {
				t.Fatalf("trial %d: after(%d) = %d, want %d (tokens %v)", trial, h, got, want, m)
			}
			if got, want := s.node(h).ID, m[m.after(h)].id; got != want {
				t.Fatalf("trial %d: node(%d) = %s, want %s", trial, h, got, want)
			}
			if got, want := s.before(h), m.before(h); got != want {
				t.Fatalf("trial %d: before(%d) = %d, want %d", trial, h, got, want)
			}
		}
		for i, x := range m {
			if p := s.position(x.t, x.id); p != i {
				t.Fatalf("position(%d,%s) = %d, want %d", x.t, x.id, p, i)
			}
		}
	}
}

// TestIndexFastPath checks the shape of the lookup index on a real ring:
// every entry's owners are in range, the slow entries (buckets with two or
// more tokens) are the few the sizing predicts, and the hashes at and around
// every token — where the index entry cannot decide — agree with the model.
func TestIndexFastPath(t *testing.T) {
	r := New(64, 2)
	for i := range 64 {
		r.Insert(nd(fmt.Sprintf("node-%03d", i)), 0)
	}
	s := r.load()
	if got, min := len(s.index), indexLoad*len(s.tokens); got < min || got >= 2*min {
		t.Fatalf("index has %d entries for %d tokens, want [%d, %d)", got, len(s.tokens), min, 2*min)
	}
	slow := 0
	for b, e := range s.index {
		a, bb := e&s.ownerMask, e>>s.ownerBits&s.ownerMask
		switch {
		case e == slowEntry:
			slow++
		case int(a) >= len(s.nodes) || int(bb) >= len(s.nodes):
			t.Fatalf("entry %d = %#x: owners out of range", b, e)
		}
	}
	// Poisson with λ ≤ 1/indexLoad: P(≥2) ≤ 2.7%; allow twice that.
	if limit := len(s.index) * 55 / 1000; slow > limit {
		t.Fatalf("%d of %d index entries are slow, want ≤ %d", slow, len(s.index), limit)
	}
	m := naive(modelTokens(r.Weights()))
	for _, x := range m {
		for _, h := range []uint64{x.t - 1, x.t, x.t + 1, x.t ^ 1<<20, x.t + 1<<31} {
			if got, want := s.node(h).ID, m[m.search(h)].id; got != want {
				t.Fatalf("node(%#x) = %s, want %s", h, got, want)
			}
		}
	}
}

// TestIndexManyNodes checks a ring with more nodes than an index entry can
// name: every bucket takes the slow path, and lookups stay exact.
func TestIndexManyNodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tree := btree.NewG(btreeDegree, itemLess)
	nodes := map[string]notp.Node{}
	for i := range 8192 + 10 { // 14-bit owners leave 4 < minFragBits token bits
		id := fmt.Sprint("n", i)
		nodes[id] = nd(id)
		tree.ReplaceOrInsert(item{rng.Uint64(), id})
	}
	s := buildSnapshot(tree, nodes)
	for b, e := range s.index {
		if e != slowEntry {
			t.Fatalf("entry %d = %#x, want slow with %d nodes", b, e, len(s.nodes))
		}
	}
	var m naive
	tree.Ascend(func(it item) bool { m = append(m, tok{t: it.token, id: it.id}); return true })
	for i := range 2000 {
		h := rng.Uint64()
		if i%2 == 0 {
			h = m[rng.IntN(len(m))].t
		}
		if got, want := s.node(h).ID, m[m.search(h)].id; got != want {
			t.Fatalf("node(%#x) = %s, want %s", h, got, want)
		}
	}
}

// TestClone checks that a clone and its source evolve independently.
func TestClone(t *testing.T) {
	r := ringOf(2, 2, "a", "b", "c")
	c := r.Clone()
	if !c.Equal(r) || c.RFactor() != 2 {
		t.Fatal("clone differs from its source")
	}
	r.Insert(nd("d"), 0)
	r.Remove("a")
	if !c.Equal(ringOf(2, 2, "a", "b", "c")) {
		t.Fatal("writes to the source leaked into the clone")
	}
	c.Update(notp.Node{ID: "b", Host: "x", Port: 1}, 5)
	if n, _ := r.Get("b"); n != nd("b") || r.Weights()["b"] != 2 {
		t.Fatal("writes to the clone leaked into the source")
	}
	var z Ring
	if z.Clone().Size() != 0 {
		t.Fatal("clone of the zero ring is not empty")
	}
}

// TestConcurrentReadsAndWrites runs lock-free readers against a writer; the
// race detector checks the snapshot handoff, the assertions check that a
// reader never sees a torn ring.
func TestConcurrentReadsAndWrites(t *testing.T) {
	r := New(16, 2)
	r.Insert(nd("base"), 0)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]notp.Node, 0, 3)
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				key := fmt.Appendf(nil, "g%d-%d", g, i)
				owner, ok := r.Owner(key)
				buf = r.AppendRangeNext(buf[:0], key, 3)
				if !ok || len(buf) == 0 || owner.ID == "" || len(slices.Compact(slices.Sorted(slices.Values(ids(buf))))) != len(buf) {
					errs <- fmt.Errorf("reader saw a broken ring: owner %v list %v", owner, ids(buf))
					return
				}
			}
		}()
	}
	for i := range 200 {
		id := fmt.Sprint("w", i%20)
		if r.Has(id) {
			r.Remove(id)
		} else {
			r.Insert(nd(id), 0)
		}
		if i%50 == 0 {
			r.Merge(ringOf(16, 2, "m1", "m2"))
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
