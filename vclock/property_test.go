package vclock_test

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/vclock"
)

// propertyRounds is how many random cases each property test checks; small
// enough to keep the race-enabled run well under a second.
const propertyRounds = 2000

// model is the naive reference: the counts of a clock.
type model map[string]uint64

// randomClock returns a clock over a few ids with small counts and times, so
// that equal counts, equal times and empty clocks all occur often.
func randomClock(r *rand.Rand) *vclock.Clock {
	c := vclock.New()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if r.IntN(2) == 0 {
			continue
		}
		c.UpdateAt(id, r.Uint64N(4), epoch.Add(time.Duration(r.IntN(3))*time.Second))
	}
	return c
}

// modelDescends is Descends written from the spec on the model.
func modelDescends(a, b model) bool {
	if len(b) == 0 {
		return true
	}
	if len(a) == 0 {
		return false
	}
	for id, n := range b {
		if m, ok := a[id]; !ok || m < n {
			return false
		}
	}
	return true
}

// modelMerge is the per-id maximum of counts.
func modelMerge(a, b model) model {
	out := maps.Clone(a)
	for id, n := range b {
		if m, ok := out[id]; !ok || n > m {
			out[id] = n
		}
	}
	return out
}

// merged returns a clone of a merged with the others in order.
func merged(a *vclock.Clock, others ...*vclock.Clock) *vclock.Clock {
	out := a.Clone()
	for _, o := range others {
		out.Merge(o)
	}
	return out
}

func TestPropertyMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range propertyRounds {
		a, b, c := randomClock(r), randomClock(r), randomClock(r)
		ab := merged(a, b)
		if got, want := model(counts(ab)), modelMerge(counts(a), counts(b)); !maps.Equal(got, want) {
			t.Fatalf("%v ⊔ %v = %v, model %v", a, b, got, want)
		}
		if ba := merged(b, a); !maps.Equal(counts(ab), counts(ba)) {
			t.Fatalf("not commutative: %v vs %v", ab, ba)
		}
		if l, r := merged(ab, c), merged(a, merged(b, c)); !maps.Equal(counts(l), counts(r)) {
			t.Fatalf("not associative: %v vs %v", l, r)
		}
		if aa := merged(a, a.Clone()); !aa.Equal(a) {
			t.Fatalf("not idempotent: %v vs %v", aa, a)
		}
		if !ab.Descends(a) || !ab.Descends(b) {
			t.Fatalf("%v does not descend both %v and %v", ab, a, b)
		}
		if !merged(ab, b).Equal(ab) {
			t.Fatal("merging an input again changed the result")
		}
	}
}

func TestPropertyDescendsCompare(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range propertyRounds {
		a, b := randomClock(r), randomClock(r)
		if r.IntN(4) == 0 {
			b = merged(a, b) // make descending pairs common
		}
		ab, ba := a.Descends(b), b.Descends(a)
		if want := modelDescends(counts(a), counts(b)); ab != want {
			t.Fatalf("%v.Descends(%v) = %v, model %v", a, b, ab, want)
		}
		var want vclock.Order
		switch {
		case ab && ba:
			want = vclock.Equal
		case ab:
			want = vclock.After
		case ba:
			want = vclock.Before
		default:
			want = vclock.Concurrent
		}
		if got := a.Compare(b); got != want {
			t.Fatalf("%v.Compare(%v) = %v, want %v from Descends", a, b, got, want)
		}
		if sameCounts := maps.Equal(counts(a), counts(b)); sameCounts != (want == vclock.Equal) {
			t.Fatalf("Compare Equal %v but same counts %v: %v, %v", want == vclock.Equal, sameCounts, a, b)
		}
		if a.Equal(b) && want != vclock.Equal {
			t.Fatalf("Equal clocks compare %v", want)
		}
	}
}

func TestPropertyTrim(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range propertyRounds {
		c := vclock.New()
		for i := range r.IntN(30) {
			c.UpdateAt(string(rune('a'+i)), 1, epoch.Add(-time.Duration(r.IntN(100))*time.Second))
		}
		o := vclock.TrimOptions{
			LowerBound: r.IntN(12), YoungBound: time.Duration(r.IntN(60)) * time.Second,
			UpperBound: r.IntN(20), OldBound: time.Duration(r.IntN(100)) * time.Second,
		}
		before := c.Clone()
		removed := c.Trim(epoch, o)
		checkTrim(t, before, c, removed, o)
	}
}

// checkTrim checks one Trim result against the rules, not a re-implementation.
func checkTrim(t *testing.T, before, after *vclock.Clock, removed int, o vclock.TrimOptions) {
	t.Helper()
	if removed != before.Size()-after.Size() {
		t.Fatalf("removed %d, but size went %d -> %d", removed, before.Size(), after.Size())
	}
	age := func(e vclock.Entry) time.Duration { return epoch.Sub(time.UnixMicro(e.Time)) }
	// Entries by age, oldest first, ties by id: Trim's deletion order.
	ids := before.Nodes()
	slices.SortStableFunc(ids, func(x, y string) int {
		tx, ty := mustGet(t, before, x).Time, mustGet(t, before, y).Time
		switch {
		case tx < ty:
			return -1
		case tx > ty:
			return 1
		}
		return 0 // Nodes is sorted, so a stable sort keeps id order on ties
	})
	gateOpen := before.Size() > o.LowerBound && len(ids) > 0 && age(mustGet(t, before, ids[0])) > o.YoungBound
	if !gateOpen {
		if removed != 0 {
			t.Fatalf("removed %d with the gate closed (size %d, opts %+v)", removed, before.Size(), o)
		}
		return
	}
	for i, id := range ids {
		if (i < removed) == after.Has(id) {
			t.Fatalf("removed entries are not the %d oldest: %v kept %v", removed, ids, after.Nodes())
		}
	}
	if after.Size() > o.UpperBound {
		t.Fatalf("size %d above UpperBound %d after trim", after.Size(), o.UpperBound)
	}
	for id, e := range after.All() {
		if age(e) > o.OldBound {
			t.Fatalf("%s (age %v) survived OldBound %v", id, age(e), o.OldBound)
		}
	}
	if removed > 0 { // the last deletion was justified when it happened
		last := mustGet(t, before, ids[removed-1])
		if before.Size()-removed+1 <= o.UpperBound && age(last) <= o.OldBound {
			t.Fatalf("removed %s needlessly", ids[removed-1])
		}
	}
}

func TestPropertyTrimNeverBelowLowerBound(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range propertyRounds {
		c := vclock.New()
		n := r.IntN(15)
		for i := range n {
			c.UpdateAt(string(rune('a'+i)), 1, epoch.Add(-time.Duration(r.IntN(1000))*time.Hour))
		}
		lower := n + r.IntN(3)
		if removed := c.Trim(epoch, vclock.TrimOptions{LowerBound: lower}); removed != 0 || c.Size() != n {
			t.Fatalf("size %d <= LowerBound %d but Trim removed %d", n, lower, removed)
		}
	}
}

func TestPropertyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range propertyRounds / 4 {
		c := randomClock(r)
		if r.IntN(2) == 0 { // real timestamps too
			c.Increment("now")
		}
		for _, codec := range codecs {
			b, err := codec.marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			d := vclock.New()
			if err := codec.unmarshal(b, d); err != nil {
				t.Fatalf("%s: decode %q: %v", codec.name, b, err)
			}
			if !d.Equal(c) {
				t.Fatalf("%s: round trip %v -> %v", codec.name, c, d)
			}
			if b2, _ := codec.marshal(d); string(b2) != string(b) {
				t.Fatalf("%s: re-encoding differs: %q vs %q", codec.name, b, b2)
			}
		}
	}
}
