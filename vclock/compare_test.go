package vclock_test

import (
	"maps"
	"testing"

	"github.com/notp-go/notp/vclock"
)

type entries = map[string]vclock.Entry

// Merging an empty clock changes nothing.
func TestMergeEmptyInput(t *testing.T) {
	c := clockOf(t, entries{"a": {Count: 1, Insert: 1, Time: 2}})
	want := c.Clone()
	c.Merge(vclock.New())
	c.Merge(nil)
	if !c.Equal(want) {
		t.Fatalf("merging empty changed %v", c)
	}
}

// Merging into an empty clock copies the input (deeply).
func TestMergeIntoEmpty(t *testing.T) {
	in := clockOf(t, entries{"a": {Count: 1, Insert: 1, Time: 2}, "b": {Count: 3, Insert: 4, Time: 5}})
	c := vclock.New()
	c.Merge(in)
	if !c.Equal(in) {
		t.Fatalf("merge into empty: %v, want %v", c, in)
	}
	in.Increment("a")
	if c.Count("a") != 1 {
		t.Fatal("merge aliased the input")
	}
}

// Entries missing locally are copied verbatim, Insert included.
func TestMergeAddsMissing(t *testing.T) {
	c := clockOf(t, entries{"a": {Count: 1, Insert: 1, Time: 2}})
	c.Merge(clockOf(t, entries{"b": {Count: 2, Insert: 10, Time: 20}}))
	want := clockOf(t, entries{"a": {Count: 1, Insert: 1, Time: 2}, "b": {Count: 2, Insert: 10, Time: 20}})
	if !c.Equal(want) {
		t.Fatalf("got %v %v", c, mustGet(t, c, "b"))
	}
}

// The higher count wins in both directions; equal counts keep the later Time,
// and the local entry on a tie.
func TestMergeEntryRules(t *testing.T) {
	tests := []struct {
		name         string
		local, other vclock.Entry
		want         vclock.Entry
	}{
		{"remote count higher", vclock.Entry{Count: 1, Insert: 1, Time: 9}, vclock.Entry{Count: 2, Insert: 2, Time: 3}, vclock.Entry{Count: 2, Insert: 2, Time: 3}},
		{"local count higher", vclock.Entry{Count: 3, Insert: 1, Time: 1}, vclock.Entry{Count: 2, Insert: 2, Time: 9}, vclock.Entry{Count: 3, Insert: 1, Time: 1}},
		{"equal count remote later", vclock.Entry{Count: 2, Insert: 1, Time: 5}, vclock.Entry{Count: 2, Insert: 2, Time: 6}, vclock.Entry{Count: 2, Insert: 2, Time: 6}},
		{"equal count local later", vclock.Entry{Count: 2, Insert: 1, Time: 7}, vclock.Entry{Count: 2, Insert: 2, Time: 6}, vclock.Entry{Count: 2, Insert: 1, Time: 7}},
		{"full tie keeps local", vclock.Entry{Count: 2, Insert: 1, Time: 6}, vclock.Entry{Count: 2, Insert: 2, Time: 6}, vclock.Entry{Count: 2, Insert: 1, Time: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clockOf(t, entries{"a": tt.local, "keep": {Count: 1}})
			o := clockOf(t, entries{"a": tt.other})
			c.Merge(o)
			if got := mustGet(t, c, "a"); got != tt.want {
				t.Fatalf("merged entry %+v, want %+v", got, tt.want)
			}
			if !c.Has("keep") {
				t.Fatal("merge dropped an id missing remotely")
			}
			if got := mustGet(t, o, "a"); got != tt.other {
				t.Fatalf("merge modified its input: %+v", got)
			}
		})
	}
}

func TestMergeSelf(t *testing.T) {
	c := clockOf(t, entries{"a": {Count: 1, Insert: 1, Time: 2}})
	want := c.Clone()
	c.Merge(c)
	if !c.Equal(want) {
		t.Fatalf("a.Merge(a) changed the clock: %v", c)
	}
}

// Descends.
func TestDescends(t *testing.T) {
	tests := []struct {
		name string
		a, b map[string]uint64
		want bool
	}{
		{"86 anything descends empty", map[string]uint64{"a": 1}, nil, true},
		{"86 empty descends empty", nil, nil, true},
		{"87 empty does not descend non-empty", nil, map[string]uint64{"a": 0}, false},
		{"88 input count higher", map[string]uint64{"a": 1, "b": 2}, map[string]uint64{"a": 2}, false},
		{"89 input has unknown id", map[string]uint64{"a": 5}, map[string]uint64{"a": 1, "z": 0}, false},
		{"90 every input count lower or equal", map[string]uint64{"a": 2, "b": 3, "c": 1}, map[string]uint64{"a": 2, "b": 1}, true},
		{"90 equal clocks", map[string]uint64{"a": 2}, map[string]uint64{"a": 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := fromCounts(tt.a), fromCounts(tt.b)
			if got := a.Descends(b); got != tt.want {
				t.Fatalf("%v.Descends(%v) = %v, want %v", a, b, got, tt.want)
			}
		})
	}
	if !vclock.New().Descends(nil) {
		t.Error("Descends(nil) = false, want true")
	}
}

// fromCounts builds a clock with the given counts (times from time.Now).
func fromCounts(m map[string]uint64) *vclock.Clock {
	c := vclock.New()
	for id, n := range m {
		c.Update(id, n)
	}
	return c
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b map[string]uint64
		want vclock.Order
	}{
		{"both empty", nil, nil, vclock.Equal},
		{"same counts", map[string]uint64{"a": 1, "b": 2}, map[string]uint64{"b": 2, "a": 1}, vclock.Equal},
		{"after empty", map[string]uint64{"a": 0}, nil, vclock.After},
		{"before", map[string]uint64{"a": 1}, map[string]uint64{"a": 2}, vclock.Before},
		{"after", map[string]uint64{"a": 2, "b": 1}, map[string]uint64{"a": 2}, vclock.After},
		{"concurrent counts", map[string]uint64{"a": 2, "b": 1}, map[string]uint64{"a": 1, "b": 2}, vclock.Concurrent},
		{"concurrent ids", map[string]uint64{"a": 1}, map[string]uint64{"b": 1}, vclock.Concurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := fromCounts(tt.a), fromCounts(tt.b)
			if got := a.Compare(b); got != tt.want {
				t.Fatalf("Compare = %v, want %v", got, tt.want)
			}
			if got, want := b.Compare(a), reverse(tt.want); got != want {
				t.Fatalf("reverse Compare = %v, want %v", got, want)
			}
		})
	}
	c := fromCounts(map[string]uint64{"a": 1})
	if c.Compare(nil) != vclock.After || c.Compare(c) != vclock.Equal {
		t.Errorf("Compare(nil), Compare(self) = %v, %v", c.Compare(nil), c.Compare(c))
	}
}

// reverse returns the order seen from the other side.
func reverse(o vclock.Order) vclock.Order {
	switch o {
	case vclock.Before:
		return vclock.After
	case vclock.After:
		return vclock.Before
	}
	return o
}

// Equal compares ids, counts, Insert and Time; Compare's Equal order looks at
// counts only.
func TestEqual(t *testing.T) {
	base := entries{"a": {Count: 1, Insert: 2, Time: 3}, "b": {Count: 4, Insert: 5, Time: 6}}
	a := clockOf(t, base)
	smaller := clockOf(t, entries{"a": base["a"]})
	if a.Equal(smaller) || smaller.Equal(a) {
		t.Error("Equal true for different sizes")
	}
	other := maps.Clone(base)
	delete(other, "b")
	other["c"] = base["b"]
	if a.Equal(clockOf(t, other)) {
		t.Error("Equal true for different ids")
	}
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	copied := vclock.New()
	if err := copied.UnmarshalJSON(b); err != nil || !a.Equal(copied) {
		t.Errorf("serialised copy not Equal (err %v)", err)
	}
	for _, field := range []string{"count", "insert", "time"} {
		changed := maps.Clone(base)
		e := changed["a"]
		switch field {
		case "count":
			e.Count++
		case "insert":
			e.Insert++
		case "time":
			e.Time++
		}
		changed["a"] = e
		c := clockOf(t, changed)
		if a.Equal(c) {
			t.Errorf("Equal ignores %s", field)
		}
		if wantEqualOrder := field != "count"; (a.Compare(c) == vclock.Equal) != wantEqualOrder {
			t.Errorf("changing %s: Compare = %v", field, a.Compare(c))
		}
	}
	if !vclock.New().Equal(nil) || a.Equal(nil) || !a.Equal(a) {
		t.Error("Equal with nil or self is wrong")
	}
}
