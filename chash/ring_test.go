package chash

// Checks that the ring behaves as notp's CHash does: construction, insert,
// remove, get, update, find, the neighbour walks (Next, Prev, RangeNext,
// RangePrev), merge, intersect, the accessors, equality and the JSON form,
// ported from notp's JavaScript unit tests. Those use rfactor=1, pfactor=1
// unless stated; orders that depended on SHA-256 are re-derived from the
// xxhash tokens.

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"

	"github.com/notp-go/notp"
)

func nd(id string) notp.Node { return notp.Node{ID: id, Host: "127.0.0.1", Port: 7022} }

func ids(nodes []notp.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func ringOf(rf, pf int, names ...string) *Ring {
	r := New(rf, pf)
	for _, n := range names {
		r.Insert(nd(n), 0)
	}
	return r
}

// sortedTokens lists the ring's tokens in ring order with their owners,
// computed from Token rather than from the ring, as the tests' model.
type tok struct {
	t  uint64
	id string
	i  int // vnode number
}

func modelTokens(weights map[string]int) []tok {
	var out []tok
	for id, w := range weights {
		for i := 1; i <= w; i++ {
			out = append(out, tok{Token(id, i), id, i})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		return out[a].t < out[b].t || (out[a].t == out[b].t && out[a].id < out[b].id)
	})
	return out
}

func vnodeKey(id string, i int) []byte { return []byte(fmt.Sprintf("%s_%d", id, i)) }

// The constructor keeps factors; empty ring; a ring built from an
// existing ring's contents (here: its encoding) derives weights.
func TestNewFactors(t *testing.T) {
	r := New(1, 1)
	if r.RFactor() != 1 || r.PFactor() != 1 || r.Size() != 0 || r.NumberNodes() != 0 {
		t.Fatalf("New(1,1): rfactor %d pfactor %d size %d nodes %d", r.RFactor(), r.PFactor(), r.Size(), r.NumberNodes())
	}
	d := New(0, -1)
	if d.RFactor() != DefaultRFactor || d.PFactor() != DefaultPFactor {
		t.Fatalf("New(0,-1) factors = %d,%d, want defaults", d.RFactor(), d.PFactor())
	}
	var z Ring
	if z.RFactor() != DefaultRFactor || z.PFactor() != DefaultPFactor || z.Size() != 0 {
		t.Fatalf("zero Ring is not an empty ring with default factors")
	}
	src := New(1, 1)
	src.Insert(nd("a"), 3)
	src.Insert(nd("b"), 1)
	data, err := src.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got Ring
	if err := got.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if w := got.Weights(); w["a"] != 3 || w["b"] != 1 || len(w) != 2 {
		t.Fatalf("weights derived from tokens = %v", w)
	}
}

// Insert uses rfactor tokens by default, ignores duplicate IDs
// (even with another address), honours an explicit weight.
func TestInsert(t *testing.T) {
	r := New(1, 1)
	r.Insert(nd("a"), 0)
	if r.Size() != 1 || r.Weights()["a"] != 1 {
		t.Fatalf("default weight: size %d weights %v", r.Size(), r.Weights())
	}
	moved := notp.Node{ID: "a", Host: "other", Port: 1}
	r.Insert(moved, 5)
	if n, _ := r.Get("a"); n != nd("a") || r.Size() != 1 {
		t.Fatalf("duplicate insert changed the ring: %v size %d", n, r.Size())
	}
	r.Insert(nd("b"), 3)
	if r.Size() != 4 || r.Weights()["b"] != 3 || r.NumberNodes() != 2 {
		t.Fatalf("explicit weight: size %d weights %v", r.Size(), r.Weights())
	}
	r3 := New(3, 1)
	r3.Insert(nd("c"), -2)
	if r3.Size() != 3 {
		t.Fatalf("weight ≤ 0 with rfactor 3: size %d", r3.Size())
	}
	r.Insert(notp.Node{}, 1) // empty ID: ignored
	if r.Size() != 4 || r.Has("") {
		t.Fatal("node with an empty ID was inserted")
	}
}

// Remove deletes all tokens (custom weight too); absent is a no-op.
func TestRemove(t *testing.T) {
	r := New(1, 1)
	r.Insert(nd("a"), 0)
	r.Insert(nd("b"), 7)
	r.Remove("b")
	if r.Size() != 1 || r.Has("b") || len(r.Weights()) != 1 {
		t.Fatalf("after Remove(b): size %d weights %v", r.Size(), r.Weights())
	}
	r.Remove("zzz")
	if r.Size() != 1 {
		t.Fatal("removing an absent node changed the ring")
	}
	r.Remove("a")
	if r.Size() != 0 || r.NumberNodes() != 0 {
		t.Fatal("ring not empty after removing every node")
	}
	var z Ring
	z.Remove("a") // zero ring: no panic
}

// Get returns the stored node (stored host/port) or not found.
func TestGet(t *testing.T) {
	r := New(1, 1)
	r.Insert(notp.Node{ID: "a", Host: "h1", Port: 1}, 0)
	if n, ok := r.Get("a"); !ok || n.Host != "h1" {
		t.Fatalf("Get(a) = %v, %v", n, ok)
	}
	if n, ok := r.Get("b"); ok || !n.IsZero() {
		t.Fatalf("Get(b) = %v, %v; want zero, false", n, ok)
	}
}

// Update changes weight (and address); node still retrievable;
// Update of an absent node inserts it.
func TestUpdate(t *testing.T) {
	r := New(1, 1)
	r.Insert(nd("a"), 0)
	moved := notp.Node{ID: "a", Host: "h2", Port: 9}
	r.Update(moved, 4)
	if n, ok := r.Get("a"); !ok || n != moved || r.Size() != 4 || r.Weights()["a"] != 4 {
		t.Fatalf("after Update: %v %v size %d", n, ok, r.Size())
	}
	r.Update(moved, 2)
	if r.Size() != 2 {
		t.Fatalf("shrinking Update: size %d", r.Size())
	}
	r.Update(nd("b"), 0)
	if !r.Has("b") || r.Size() != 3 {
		t.Fatalf("Update of absent node: size %d", r.Size())
	}
	for tk, n := range r.All() {
		if n.ID == "a" && n != moved {
			t.Fatalf("token %d still carries the old node value %v", tk, n)
		}
	}
}

// A sole node owns every key; a key equal to a vnode name (hashing
// exactly to its token) maps to the NEXT token's owner.
func TestOwner(t *testing.T) {
	var empty Ring
	if n, ok := empty.Owner([]byte("k")); ok || !n.IsZero() {
		t.Fatal("Owner on an empty ring must return (Node{}, false)")
	}
	r := ringOf(1, 1, "a")
	for i := range 100 {
		if n, ok := r.OwnerString(fmt.Sprint("key", i)); !ok || n.ID != "a" {
			t.Fatalf("sole node does not own key%d: %v", i, n)
		}
	}
	r = ringOf(1, 1, "a", "b", "c", "d")
	model := modelTokens(r.Weights())
	for j, m := range model {
		want := model[(j+1)%len(model)].id
		got, _ := r.Owner(vnodeKey(m.id, m.i))
		if got.ID != want {
			t.Errorf("Owner(%q) = %s, want %s (token after %s's)", vnodeKey(m.id, m.i), got.ID, want, m.id)
		}
		if g2, _ := r.OwnerString(string(vnodeKey(m.id, m.i))); g2 != got {
			t.Errorf("OwnerString and Owner disagree")
		}
	}
}

// Next: empty and one-node rings, two nodes, the default count of pfactor
// neighbours with one and three tokens per node, an explicit count, an
// absent node.
func TestNext(t *testing.T) {
	if got := New(1, 1).Next("a", 1); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	if got := ringOf(1, 1, "a").Next("a", 1); len(got) != 0 {
		t.Fatalf("1-node ring: %v", got)
	}
	two := ringOf(1, 1, "a", "b")
	if got := ids(two.Next("a", 1)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("Next(a) = %v", got)
	}
	if got := ids(two.Next("b", 1)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Next(b) = %v", got)
	}
	four := ringOf(1, 1, "a", "b", "c", "d")
	checkNeighbours(t, four, "a", four.PFactor(), 1) // default count
	for _, rf := range []int{1, 3} {                 // one and three tokens per node
		r := ringOf(rf, 3, "a", "b", "c", "d", "e")
		checkNeighbours(t, r, "c", r.PFactor(), 1)
	}
	checkNeighbours(t, ringOf(3, 3, "a", "b", "c", "d"), "b", 1, 1) // explicit count
	if got := four.Next("zzz", 2); len(got) != 0 {
		t.Fatalf("absent node: %v", got)
	}
}

// Prev, the mirror of Next.
func TestPrev(t *testing.T) {
	if got := New(1, 1).Prev("a", 1); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	if got := ringOf(1, 1, "a").Prev("a", 1); len(got) != 0 {
		t.Fatalf("1-node ring: %v", got)
	}
	two := ringOf(1, 1, "a", "b")
	if got := ids(two.Prev("a", 1)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("Prev(a) = %v", got)
	}
	four := ringOf(1, 1, "a", "b", "c", "d")
	checkNeighbours(t, four, "a", four.PFactor(), -1) // default count
	for _, rf := range []int{1, 3} {                  // one and three tokens per node
		r := ringOf(rf, 3, "a", "b", "c", "d", "e")
		checkNeighbours(t, r, "c", r.PFactor(), -1)
	}
	checkNeighbours(t, ringOf(3, 3, "a", "b", "c", "d"), "b", 1, -1) // explicit count
}

// checkNeighbours compares Next/Prev against a walk of the model tokens from
// the node's first vnode, and checks length and distinctness.
func checkNeighbours(t *testing.T, r *Ring, id string, n, dir int) {
	t.Helper()
	var got []notp.Node
	if dir > 0 {
		got = r.Next(id, n)
	} else {
		got = r.Prev(id, n)
	}
	model := modelTokens(r.Weights())
	start := slices.IndexFunc(model, func(m tok) bool { return m.id == id && m.i == 1 })
	want := []string{}
	for step := 1; step < len(model) && len(want) < min(n, r.NumberNodes()-1); step++ {
		m := model[((start+dir*step)%len(model)+len(model))%len(model)]
		if m.id != id && !slices.Contains(want, m.id) {
			want = append(want, m.id)
		}
	}
	if g := ids(got); !slices.Equal(g, want) {
		t.Fatalf("neighbours(%s, %d, dir %d) = %v, want %v", id, n, dir, g, want)
	}
	if len(got) != min(n, r.NumberNodes()-1) {
		t.Fatalf("neighbours length %d, want %d", len(got), min(n, r.NumberNodes()-1))
	}
}

// RangeNext / RangePrev generic properties.
func TestRangeNextPrev(t *testing.T) {
	var empty Ring
	if got := empty.RangeNext([]byte("k"), 3); len(got) != 0 {
		t.Fatalf("empty RangeNext = %v", got)
	}
	if got := empty.RangePrev([]byte("k"), 3); len(got) != 0 {
		t.Fatalf("empty RangePrev = %v", got)
	}
	r := ringOf(2, 2, "a", "b", "c", "d", "e")
	for i := range 50 {
		key := []byte(fmt.Sprint("key", i))
		for _, f := range []func([]byte, int) []notp.Node{r.RangeNext, r.RangePrev} {
			def := f(key, r.PFactor()+1)
			if len(def) != r.PFactor()+1 || len(slices.Compact(slices.Sorted(slices.Values(ids(def))))) != len(def) {
				t.Fatalf("default list %v: wrong length or duplicates", ids(def))
			}
			for n := 1; n <= len(def); n++ {
				if got := f(key, n); !slices.Equal(got, def[:n]) {
					t.Fatalf("list of %d = %v is not a prefix of %v", n, ids(got), ids(def))
				}
			}
			if got := f(key, 99); len(got) != r.NumberNodes() {
				t.Fatalf("n=99 not clamped to NumberNodes: %d", len(got))
			}
		}
		if own, _ := r.Owner(key); r.RangeNext(key, 1)[0] != own {
			t.Fatal("RangeNext does not start with the owner")
		}
	}
	model := modelTokens(r.Weights())
	last, first := model[len(model)-1], model[0]
	// A key hashing to the largest token wraps to the smallest token.
	if got := r.RangeNext(vnodeKey(last.id, last.i), 1); got[0].ID != first.id {
		t.Fatalf("RangeNext at the largest token = %s, want %s", got[0].ID, first.id)
	}
	// A key hashing to the smallest token wraps to the largest.
	if got := r.RangePrev(vnodeKey(first.id, first.i), 1); got[0].ID != last.id {
		t.Fatalf("RangePrev at the smallest token = %s, want %s", got[0].ID, last.id)
	}
}

// handBuiltRing finds node IDs whose six tokens (weight 2 each), in ring
// order, are owned by [n1,n2,n1,n3,n2,n3], the pattern of the JavaScript
// test's hand-built ring. It returns the ring, the three IDs and the six
// keys k0..k5 (vnode names hashing exactly to the sorted tokens).
func handBuiltRing(t *testing.T) (*Ring, [3]string, [6][]byte) {
	t.Helper()
	// Each i is an independent trial with probability 1/90 (six tokens,
	// 6!/(2!2!2!) owner patterns), so the search ends within a few hundred.
	for i := range 100000 {
		n1, n2, n3 := fmt.Sprintf("n1.%d", i), fmt.Sprintf("n2.%d", i), fmt.Sprintf("n3.%d", i)
		model := modelTokens(map[string]int{n1: 2, n2: 2, n3: 2})
		pattern := []string{n1, n2, n1, n3, n2, n3}
		if !slices.EqualFunc(model, pattern, func(m tok, id string) bool { return m.id == id }) {
			continue
		}
		r := New(2, 2)
		var keys [6][]byte
		for j, m := range model {
			keys[j] = vnodeKey(m.id, m.i)
		}
		for _, id := range []string{n1, n2, n3} {
			r.Insert(nd(id), 0)
		}
		t.Logf("hand-built ring: n1=%q", n1)
		return r, [3]string{n1, n2, n3}, keys
	}
	t.Fatal("no node name reproduces the pattern")
	return nil, [3]string{}, [6][]byte{}
}

// RangeNext and RangePrev give exact orders on the hand-built ring.
func TestHandBuiltRingOrders(t *testing.T) {
	r, n, k := handBuiltRing(t)
	n1, n2, n3 := n[0], n[1], n[2]
	for _, c := range []struct {
		name string
		got  []notp.Node
		want []string
	}{
		{"RangeNext(k0)", r.RangeNext(k[0], 3), []string{n2, n1, n3}},
		{"RangeNext(k3)", r.RangeNext(k[3], 3), []string{n2, n3, n1}},
		{"RangePrev(k0)", r.RangePrev(k[0], 3), []string{n3, n2, n1}},
		{"RangePrev(k3)", r.RangePrev(k[3], 3), []string{n1, n2, n3}},
	} {
		if g := ids(c.got); !slices.Equal(g, c.want) {
			t.Errorf("%s = %v, want %v", c.name, g, c.want)
		}
	}
	if got := ids(r.Nodes()); !slices.Equal(got, []string{n1, n2, n3}) {
		t.Errorf("Nodes() = %v, want ring order of first appearance", got)
	}
}

// Improvement over notp: n ≤ 0 returns an empty list
// instead of recursing forever.
func TestNonPositiveRange(t *testing.T) {
	r := ringOf(2, 2, "a", "b", "c")
	for _, n := range []int{0, -1, -1 << 40} {
		if len(r.RangeNext([]byte("k"), n)) != 0 || len(r.RangePrev([]byte("k"), n)) != 0 ||
			len(r.Next("a", n)) != 0 || len(r.Prev("a", n)) != 0 {
			t.Fatalf("n=%d gave a non-empty list", n)
		}
	}
	buf := []notp.Node{nd("x")}
	if got := r.AppendRangeNext(buf, []byte("k"), 0); len(got) != 1 {
		t.Fatalf("AppendRangeNext(n=0) appended: %v", got)
	}
}

// Merge.
func TestMerge(t *testing.T) {
	a := ringOf(1, 1, "a", "b")
	a.Merge(ringOf(1, 1, "a", "b"))
	if a.Size() != 2 || a.Weights()["a"] != 1 || a.Weights()["b"] != 1 {
		t.Fatalf("merging an equal ring changed it: %v", a.Weights())
	}
	a.Merge(a) // self-merge: no deadlock, no change
	if a.Size() != 2 {
		t.Fatal("self-merge changed the ring")
	}
	local := New(1, 1)
	local.Insert(nd("id"), 1)
	remote := New(1, 1)
	remote.Insert(notp.Node{ID: "id", Host: "remote", Port: 1}, 2)
	remote.Insert(nd("id2"), 1)
	local.Merge(remote)
	if w := local.Weights(); w["id"] != 2 || w["id2"] != 1 || local.Size() != 3 {
		t.Fatalf("weights after merge = %v", w)
	}
	if n, _ := local.Get("id"); n != nd("id") {
		t.Fatalf("merge replaced the local node value: %v", n)
	}
	want := New(1, 1)
	want.Insert(nd("id"), 2)
	want.Insert(nd("id2"), 1)
	if !local.Equal(want) {
		t.Fatal("merged ring differs from the ring built directly")
	}
}

// Intersect.
func TestIntersect(t *testing.T) {
	sub := ringOf(1, 1, "a")
	sub.Intersect(ringOf(1, 1, "a", "b"))
	if sub.Size() != 1 || sub.Weights()["a"] != 1 || sub.Has("b") {
		t.Fatalf("subset ∩ superset = %v", sub.Weights())
	}
	sup := ringOf(1, 1, "a", "b")
	sup.Intersect(ringOf(1, 1, "a"))
	if sup.Has("b") || sup.NumberNodes() != 1 || !sup.Equal(ringOf(1, 1, "a")) {
		t.Fatalf("superset ∩ subset kept %v", sup.Weights())
	}
	dis := ringOf(1, 1, "a")
	dis.Intersect(ringOf(1, 1, "b"))
	if dis.Size() != 0 || dis.NumberNodes() != 0 {
		t.Fatal("disjoint intersection not empty")
	}
	w := New(1, 1)
	w.Insert(nd("a"), 5)
	o := New(1, 1)
	o.Insert(nd("a"), 2)
	w.Intersect(o)
	if w.Weights()["a"] != 2 {
		t.Fatalf("weight after intersecting 5 with 2 tokens = %d", w.Weights()["a"])
	}
}

// Size, NumberNodes, Weights, Nodes, Has.
func TestAccessors(t *testing.T) {
	r := New(2, 1)
	r.Insert(nd("a"), 0)
	r.Insert(nd("b"), 3)
	if r.Size() != 5 || r.NumberNodes() != 2 {
		t.Fatalf("size %d nodes %d", r.Size(), r.NumberNodes())
	}
	w := r.Weights()
	if len(w) != 2 || w["a"] != 2 || w["b"] != 3 {
		t.Fatalf("weights %v", w)
	}
	w["a"] = 100 // a copy
	if r.Weights()["a"] != 2 {
		t.Fatal("Weights returned the live map")
	}
	nodes := r.Nodes()
	slices.SortFunc(nodes, func(x, y notp.Node) int { return cmpStr(x.ID, y.ID) })
	if !slices.Equal(nodes, []notp.Node{nd("a"), nd("b")}) {
		t.Fatalf("nodes %v", nodes)
	}
	if !r.Has("a") || r.Has("c") {
		t.Fatal("Has")
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Equal.
func TestEqual(t *testing.T) {
	a := ringOf(1, 1, "a", "b")
	if a.Equal(ringOf(1, 1, "a")) {
		t.Fatal("rings of different sizes are equal") // 63
	}
	if a.Equal(ringOf(1, 1, "a", "c")) {
		t.Fatal("rings with different contents are equal") // 64
	}
	moved := ringOf(1, 1, "a")
	moved.Insert(notp.Node{ID: "b", Host: "elsewhere", Port: 1}, 1)
	if a.Equal(moved) {
		t.Fatal("rings with different node values are equal")
	}
	other := New(5, 7)
	other.Insert(nd("b"), 1)
	other.Insert(nd("a"), 1)
	if !a.Equal(ringOf(1, 1, "a", "b")) || !a.Equal(other) {
		t.Fatal("identically built rings differ (factors must be ignored)") // 65
	}
}

// The JSON form and its decoding.
func TestJSONForm(t *testing.T) {
	r := New(1, 1)
	r.Insert(notp.Node{ID: "a", Host: "localhost", Port: 7022}, 0)
	data, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"rfactor":1,"pfactor":1,"tokens":[{"token":"%d","node":{"id":"a","host":"localhost","port":7022}}]}`, Token("a", 1))
	if string(data) != want {
		t.Fatalf("JSON form\n got %s\nwant %s", data, want)
	}
	src := New(2, 3)
	for _, id := range []string{"a", "b", "c"} {
		src.Insert(nd(id), 0)
	}
	src.Insert(nd("d"), 5)
	data, err = src.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got Ring
	if err := got.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	if got.RFactor() != 2 || got.PFactor() != 3 || got.Size() != src.Size() || !got.Equal(src) {
		t.Fatalf("decoded ring differs: rf %d pf %d size %d", got.RFactor(), got.PFactor(), got.Size())
	}
	if !maps.Equal(got.Weights(), src.Weights()) {
		t.Fatalf("weights %v, want %v", got.Weights(), src.Weights())
	}
	for i := range 100 {
		k := fmt.Sprint("k", i)
		a, _ := got.OwnerString(k)
		b, _ := src.OwnerString(k)
		if a != b {
			t.Fatalf("lookup of %s differs after decoding", k)
		}
	}
}

// notp's tests checked the JavaScript tree iterators (begin, end, iterator at
// a key), which GossipRing used to walk the ring. In Go the walks are methods
// (Owner, RangeNext, Next, …, positioned at any key above) and the raw order
// is exposed by All, an iter.Seq2 over tokens in ring order.
func TestAll(t *testing.T) {
	r := ringOf(3, 1, "a", "b", "c")
	model := modelTokens(r.Weights())
	var got []tok
	for tk, n := range r.All() {
		got = append(got, tok{t: tk, id: n.ID})
	}
	if len(got) != len(model) {
		t.Fatalf("All yielded %d tokens, want %d", len(got), len(model))
	}
	for i := range got {
		if got[i].t != model[i].t || got[i].id != model[i].id {
			t.Fatalf("token %d = %v, want %v", i, got[i], model[i])
		}
	}
	// begin is the smallest token, end the largest.
	if got[0].t != model[0].t || got[len(got)-1].t != model[len(model)-1].t {
		t.Fatal("All does not run from the smallest to the largest token")
	}
	n := 0
	for range r.All() {
		if n++; n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatal("All does not stop when the loop breaks")
	}
	var empty Ring
	for range empty.All() {
		t.Fatal("All on an empty ring yielded")
	}
}
