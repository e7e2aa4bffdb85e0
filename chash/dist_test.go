package chash

import (
	"fmt"
	"math"
	"strconv"
	"testing"
)

// Distribution tests. The ring is deterministic (fixed node names and keys),
// so each figure is one fixed number; the bounds below are chosen so that a
// correct ring with ANY names passes with overwhelming probability and a
// broken hash, token scheme or lookup fails.
//
// Model: with w tokens per node, a node's share of the hash space is the sum
// of w arc lengths, ≈ Gamma(w)/(w·nodes): relative standard deviation
// 1/sqrt(w). Key sampling adds sqrt(nodes/keys) ≈ 0.8% at 1M keys / 64
// nodes, negligible beside it.

const distKeys = 1_000_000 // 15,625 keys per node on average for 64 nodes

func distRing(nodes, weight int) *Ring {
	r := New(weight, 2)
	for i := range nodes {
		r.Insert(nd(fmt.Sprintf("node-%02d", i)), 0)
	}
	return r
}

// loads counts the keys "key-0".."key-(n-1)" each node owns.
func loads(r *Ring, n int) map[string]int {
	out := make(map[string]int)
	buf := make([]byte, 0, 32)
	for i := range n {
		buf = strconv.AppendInt(append(buf[:0], "key-"...), int64(i), 10)
		owner, _ := r.Owner(buf)
		out[owner.ID]++
	}
	return out
}

func maxOverMean(l map[string]int, nodes int) float64 {
	mx, sum := 0, 0
	for _, c := range l {
		mx = max(mx, c)
		sum += c
	}
	return float64(mx) / (float64(sum) / float64(nodes))
}

// TestLoadBalance: max/mean load over 1M keys for 64 members.
//
// Weight 64: relative sd 1/8; the max of 64 shares sits near +2.4 sd ≈ 1.3.
// Bound 1.6 (+4.8 sd: P(any node over) < 1e-4).
// Weight 3: a share is Gamma(3)/3; the max of 64 is typically ≈ 2.7 (the
// 1-1/64 quantile of Gamma(3) is ≈ 8.0). Bound 4.0: P(Gamma(3) > 12) ≈ 4.4e-4
// per node, < 3% for any of 64 — and a broken ring (one node owning most of
// the space) scores far above it.
func TestLoadBalance(t *testing.T) {
	for _, c := range []struct {
		weight int
		bound  float64
	}{{64, 1.6}, {3, 4.0}} {
		r := distRing(64, c.weight)
		l := loads(r, distKeys)
		got := maxOverMean(l, 64)
		t.Logf("64 members × weight %d, %d keys: max/mean load = %.3f (bound %.1f)", c.weight, distKeys, got, c.bound)
		if len(l) != 64 {
			t.Errorf("weight %d: only %d of 64 nodes own keys", c.weight, len(l))
		}
		if got > c.bound {
			t.Errorf("weight %d: max/mean = %.3f > %.1f", c.weight, got, c.bound)
		}
		// Shares must predict the measured loads: sampling sd of a
		// fraction p ≈ 1/64 over 1M keys is 1.2e-4; allow 8 sd.
		sum := 0.0
		for id, s := range r.Shares() {
			sum += s
			if d := math.Abs(s - float64(l[id])/distKeys); d > 1e-3 {
				t.Errorf("weight %d: node %s share %.5f vs measured %.5f", c.weight, id, s, float64(l[id])/distKeys)
			}
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("shares sum to %v", sum)
		}
	}
}

// TestMinimalMovement: adding a 65th node or removing one of 64 (weight 64)
// moves ≈ 1/65 resp. 1/64 of the keys, and only to/from the changed node.
// The moved fraction is the changed node's share: relative sd 1/8, so the
// bounds [0.5, 1.6] × ideal are 4 sd below and 4.8 sd above.
func TestMinimalMovement(t *testing.T) {
	const keys = 200_000 // sampling sd of a 1.5% fraction: 0.02% absolute
	base := distRing(64, 64)
	before := owners(base, keys)

	added := base.Clone()
	added.Insert(nd("newcomer"), 0)
	movedAdd := 0
	for i, o := range owners(added, keys) {
		if o != before[i] {
			movedAdd++
			if o != "newcomer" {
				t.Fatalf("key %d moved from %s to %s, not to the added node", i, before[i], o)
			}
		}
	}
	removed := base.Clone()
	removed.Remove("node-17")
	movedRm := 0
	for i, o := range owners(removed, keys) {
		if o != before[i] {
			movedRm++
			if before[i] != "node-17" {
				t.Fatalf("key %d moved from %s, not from the removed node", i, before[i])
			}
		} else if o == "node-17" {
			t.Fatalf("key %d still owned by the removed node", i)
		}
	}
	fa, fr := float64(movedAdd)/keys, float64(movedRm)/keys
	t.Logf("add 1 to 64 (weight 64): %.4f of keys moved (ideal 1/65 = %.4f)", fa, 1.0/65)
	t.Logf("remove 1 of 64 (weight 64): %.4f of keys moved (ideal 1/64 = %.4f)", fr, 1.0/64)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"add", fa, 1.0 / 65}, {"remove", fr, 1.0 / 64}} {
		if c.got < 0.5*c.want || c.got > 1.6*c.want {
			t.Errorf("%s moved %.4f of keys, want within [0.5, 1.6] × %.4f", c.name, c.got, c.want)
		}
	}
}

func owners(r *Ring, n int) []string {
	out := make([]string, n)
	buf := make([]byte, 0, 32)
	for i := range n {
		buf = strconv.AppendInt(append(buf[:0], "key-"...), int64(i), 10)
		o, _ := r.Owner(buf)
		out[i] = o.ID
	}
	return out
}

// TestWeightProportional: nodes of weight 2w own ≈ twice the keys of nodes
// of weight w. 32 nodes of weight 128 against 32 of weight 64: the ratio of
// the group means has relative sd ≈ sqrt(1/128+1/64)/sqrt(32) ≈ 2.7%, so
// [1.8, 2.2] is ≈ 3.7 sd either side.
func TestWeightProportional(t *testing.T) {
	r := New(64, 2)
	for i := range 32 {
		r.Insert(nd(fmt.Sprint("light-", i)), 64)
		r.Insert(nd(fmt.Sprint("heavy-", i)), 128)
	}
	l := loads(r, distKeys/2)
	light, heavy := 0, 0
	for id, c := range l {
		if id[0] == 'h' {
			heavy += c
		} else {
			light += c
		}
	}
	ratio := float64(heavy) / float64(light)
	t.Logf("weight 128 vs 64 (32 nodes each): keys per node ratio = %.3f (ideal 2)", ratio)
	if ratio < 1.8 || ratio > 2.2 {
		t.Errorf("ratio %.3f outside [1.8, 2.2]", ratio)
	}
	one := New(8, 2)
	one.Insert(nd("a"), 64)
	one.Insert(nd("b"), 128)
	sa := one.Shares()
	t.Logf("single pair weight 64 vs 128: shares %.3f / %.3f", sa["a"], sa["b"])
}

// sharesOf returns the exact shares of the hash space (arc lengths, not a
// sample of keys) of a ring of ids inserted with the default weight.
func sharesOf(rfactor int, ids []string) map[string]float64 {
	r := New(rfactor, 2)
	for _, id := range ids {
		r.Insert(nd(id), 0)
	}
	return r.Shares()
}

// balanced reports the worst deviation of three nodes' shares from a third
// (relative: 0.1 = 10%) and the max/mean share of 64 nodes.
func balanced(rfactor int) (dev3 map[string]float64, maxMean64 float64) {
	dev3 = make(map[string]float64)
	for name, ids := range map[string][]string{
		"demo":  {"node-1", "node-2", "node-3"}, // examples/demo's nodes
		"a b c": {"a", "b", "c"},                // README's three-node cluster
	} {
		for _, s := range sharesOf(rfactor, ids) {
			dev3[name] = max(dev3[name], math.Abs(3*s-1))
		}
	}
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%02d", i)
	}
	for _, s := range sharesOf(rfactor, ids) {
		maxMean64 = max(maxMean64, 64*s)
	}
	return dev3, maxMean64
}

// TestDefaultWeightBalanced: with the default weight a new user's first
// clusters are near-even: each of three nodes (the demo's and README's)
// owns a third of the key space within ±10%, and the most loaded of 64
// nodes owns at most 1.3× the mean. notp's old default of 3 tokens fails
// both (its three nodes owned 16%, 30% and 54%).
func TestDefaultWeightBalanced(t *testing.T) {
	check := func(rfactor int) (fails []string) {
		dev3, mm := balanced(rfactor)
		for name, d := range dev3 {
			t.Logf("weight %d: 3 nodes (%s): worst share off a third by %.1f%%", rfactor, name, 100*d)
			if d > 0.10 {
				fails = append(fails, fmt.Sprintf("3 nodes (%s) off a third by %.1f%% > 10%%", name, 100*d))
			}
		}
		t.Logf("weight %d: 64 nodes: max/mean share %.3f", rfactor, mm)
		if mm > 1.3 {
			fails = append(fails, fmt.Sprintf("64 nodes max/mean %.3f > 1.3", mm))
		}
		return fails
	}
	for _, f := range check(DefaultRFactor) {
		t.Errorf("default weight %d: %s", DefaultRFactor, f)
	}
	if New(0, 0).RFactor() != DefaultRFactor {
		t.Errorf("New(0, 0).RFactor() = %d, want %d", New(0, 0).RFactor(), DefaultRFactor)
	}
	// The bounds have teeth: the old default misses them.
	if fails := check(3); len(fails) == 0 {
		t.Error("weight 3 meets the balance bounds; the test cannot tell a bad default")
	}
}
