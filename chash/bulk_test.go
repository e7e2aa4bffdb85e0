package chash

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/notp-go/notp"
)

// TestApplyMatchesSingleCalls checks Build and Apply against the same
// changes made one node at a time: random removals and upserts (with
// repeated IDs, default weights and empty IDs) must give equal rings.
func TestApplyMatchesSingleCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var set []Weighted
		for range rng.IntN(20) {
			id := fmt.Sprintf("n%d", rng.IntN(12))
			if rng.IntN(15) == 0 {
				id = ""
			}
			set = append(set, Weighted{Node: notp.Node{ID: id, Host: "h", Port: rng.IntN(3) + 1}, Weight: rng.IntN(6) - 1})
		}
		want := New(3, 2)
		for _, w := range set {
			want.Update(w.Node, w.Weight)
		}
		got := Build(3, 2, set)
		if !got.Equal(want) || fmt.Sprint(got.Weights()) != fmt.Sprint(want.Weights()) {
			t.Fatalf("round %d: Build(%v) = %v, want %v", round, set, got.Weights(), want.Weights())
		}

		var remove []string
		for range rng.IntN(5) {
			remove = append(remove, fmt.Sprintf("n%d", rng.IntN(14)))
		}
		var more []Weighted
		for range rng.IntN(6) {
			more = append(more, Weighted{Node: nd(fmt.Sprintf("n%d", rng.IntN(14))), Weight: rng.IntN(5) + 1})
		}
		before, beforeW := got.Clone(), fmt.Sprint(got.Weights())
		for _, id := range remove {
			want.Remove(id)
		}
		for _, w := range more {
			want.Update(w.Node, w.Weight)
		}
		got.Apply(remove, more)
		if !got.Equal(want) || fmt.Sprint(got.Nodes()) != fmt.Sprint(want.Nodes()) {
			t.Fatalf("round %d: Apply(%v, %v) = %v, want %v", round, remove, more, got.Weights(), want.Weights())
		}
		if w := fmt.Sprint(before.Weights()); w != beforeW {
			t.Fatalf("round %d: Apply changed the clone taken before it: %s, was %s", round, w, beforeW)
		}
	}
}

// TestApplyNoChangeKeepsSnapshot: removing absent nodes and setting
// nothing publishes no new snapshot.
func TestApplyNoChangeKeepsSnapshot(t *testing.T) {
	r := ringOf(4, 2, "a", "b")
	s := r.load()
	r.Apply([]string{"zz"}, []Weighted{{Node: notp.Node{}}})
	if r.load() != s {
		t.Fatal("a change of nothing published a new snapshot")
	}
}

// TestBuildAllocatesOnce: a ring of 64 nodes × 1024 tokens built in one
// step allocates about one token table (the tree, the sorted items and one
// snapshot), not one snapshot per node.
func TestBuildAllocatesOnce(t *testing.T) {
	ws := make([]Weighted, 64)
	for i := range ws {
		ws[i] = Weighted{Node: nd(fmt.Sprintf("node-%03d", i)), Weight: 1024}
	}
	tokens := 64 * 1024
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := Build(1, 1, ws)
	runtime.ReadMemStats(&after)
	if r.Size() != tokens {
		t.Fatalf("Size = %d, want %d", r.Size(), tokens)
	}
	// Per token: 24 bytes of item in the sort buffer, about as much in
	// the tree, 12 in tokens+owners and up to 48 in the lookup tables.
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(tokens*200); got > limit {
		t.Fatalf("Build allocated %d bytes for %d tokens, want at most %d", got, tokens, limit)
	}
}
