package msgpackcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/notp-go/notp/internal/testutil"
	"github.com/vmihailenco/msgpack/v5"
)

// array32 is the header of an array of n elements.
func array32(n uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{0xdd}, n)
}

// nils is an array of n nils: n+5 bytes.
func nils(n int) []byte {
	return append(array32(uint32(n)), bytes.Repeat([]byte{0xc0}, n)...)
}

// withKey wraps v as the value of key in a one-pair map.
func withKey(key string, v []byte) []byte {
	b, _ := msgpack.Marshal(key)
	return append(append([]byte{0x81}, b...), v...)
}

type bigItem struct {
	A, B, C, D string
	E, F, G, H int64
	I          [4]int64
}

type holder struct {
	Entries []bigItem `msgpack:"entries"`
}

// An array of a million nils is 1 MB, and decodes into a million zero
// structs: Check alone lets it through and the decode allocates about a
// hundred times the input. A MinElem for the array, or a MaxLen, rejects it
// before the decoder allocates anything.
func TestNilArrayBudget(t *testing.T) {
	const n = 1 << 20
	in := withKey("entries", nils(n))
	var h holder
	if err := Check(in); err != nil {
		t.Fatalf("Check = %v, want nil (the structure is valid)", err)
	}
	if got := testutil.Allocated(func() { _ = Unmarshal(in, &h) }); got < 50*uint64(len(in)) {
		t.Fatalf("unbounded decode allocated %d bytes for %d of input; the test input is not adversarial", got, len(in))
	}
	h = holder{}
	for name, lim := range map[string]Limits{
		"MinElem":      {MinElem: 8},
		"path MinElem": {Paths: map[string]Limit{"entries": {MinElem: 8}}},
		"path MaxLen":  {Paths: map[string]Limit{"entries": {MaxLen: 10000}}},
	} {
		var err error
		got := testutil.Allocated(func() { err = UnmarshalLimits(in, &h, lim) })
		if !errors.Is(err, ErrLimit) {
			t.Errorf("%s: err = %v, want ErrLimit", name, err)
		}
		if got > 64<<10 { // slack for the runtime's own allocations
			t.Errorf("%s: allocated %d bytes before rejecting", name, got)
		}
	}
	// A path limit applies to its path only.
	other := Limits{Paths: map[string]Limit{"other": {MaxLen: 1}, "entries[]": {MaxLen: 1}}}
	if err := CheckLimits(in, other); err != nil {
		t.Fatalf("limits on other paths: %v", err)
	}
}

// Maps and arrays declaring huge counts are rejected from their header,
// with or without limits, and allocate nothing.
func TestHugeDeclaredCounts(t *testing.T) {
	cases := map[string][]byte{
		"map32":           binary.BigEndian.AppendUint32([]byte{0xdf}, 1<<31),
		"array32":         array32(1 << 31),
		"nested arrays":   append(array32(3), append(array32(1<<30), 0xc0)...),
		"map of arrays":   withKey("a", array32(1<<30)),
		"map16 too large": append([]byte{0xde, 0xff, 0xff}, bytes.Repeat([]byte{0xc0}, 1000)...),
	}
	for name, in := range cases {
		var v any
		var err error
		got := testutil.Allocated(func() { err = UnmarshalLimits(in, &v, Limits{}) })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
		if got > 64<<10 { // slack for the runtime's own allocations
			t.Errorf("%s: allocated %d bytes", name, got)
		}
	}
}

// Nested arrays: every element of an inner array counts against the bytes
// that follow it, and a path names an array inside array elements.
func TestNestedPaths(t *testing.T) {
	inner := nils(100)
	var outer []byte
	outer = append(outer, array32(3)...)
	for range 3 {
		outer = append(outer, inner...)
	}
	in := withKey("a", withKey("b", outer))
	cases := []struct {
		lim  Limits
		want error
	}{
		{Limits{}, nil},
		{Limits{Paths: map[string]Limit{"a.b": {MaxLen: 3}}}, nil},
		{Limits{Paths: map[string]Limit{"a.b": {MaxLen: 2}}}, ErrLimit},
		{Limits{Paths: map[string]Limit{"a.b[]": {MaxLen: 100}}}, nil},
		{Limits{Paths: map[string]Limit{"a.b[]": {MaxLen: 99}}}, ErrLimit},
		{Limits{Paths: map[string]Limit{"a.b[]": {MinElem: 2}}}, ErrLimit},
		{Limits{Paths: map[string]Limit{"a": {MaxLen: 1}}}, nil},
		{Limits{Paths: map[string]Limit{"": {MaxLen: 1}, "a": {MinElem: 1000}}}, ErrLimit},
		{Limits{MinElem: 2}, ErrLimit}, // the inner nils are one byte each
	}
	for i, c := range cases {
		if err := CheckLimits(in, c.lim); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("case %d (%+v): err = %v, want %v", i, c.lim, err, c.want)
		}
	}
}

// With MinElem at the decoded size of an element, a decode cannot
// allocate much more than its input, whatever one-byte values (nil, empty
// map, empty array, zero) fill the array.
func TestMinElemBoundsDecodedSize(t *testing.T) {
	size := int(binary.Size(bigItem{})) + 4*16 // the strings' headers
	for i, n := range []int{10, 1000, 100000, 300000} {
		fill := []byte{0xc0, 0x80, 0x90, 0x00}[i]
		in := withKey("entries", append(array32(uint32(n)), bytes.Repeat([]byte{fill}, n)...))
		var h holder
		var err error
		got := testutil.Allocated(func() { err = UnmarshalLimits(in, &h, Limits{MinElem: size}) })
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("%d × 0x%02x: err = %v, want ErrLimit", n, fill, err)
		}
		if got > 2*uint64(len(in))+64<<10 {
			t.Fatalf("%d × 0x%02x: allocated %d bytes for %d of input", n, fill, got, len(in))
		}
	}
}

// FuzzCheckLimits: limits only tighten Check (whatever CheckLimits
// accepts, Check accepts), and a decode after CheckLimits honours the
// per-path MaxLen.
func FuzzCheckLimits(f *testing.F) {
	for _, v := range []any{
		sample{Items: []sampleItem{{"a", 1}, {"b", 2}}, Tags: map[string]string{"k": "v"}},
		map[string]any{"items": []any{nil, nil, nil, nil, nil}},
		[]any{1, []any{2, 3}},
	} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	lim := Limits{MinElem: 1, Paths: map[string]Limit{
		"items": {MaxLen: 4, MinElem: 3},
		"tags":  {MaxLen: 2},
	}}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckLimits(b, lim)
		if err != nil {
			return
		}
		if err := Check(b); err != nil {
			t.Fatalf("CheckLimits accepted what Check rejects: %v", err)
		}
		var s sample
		if UnmarshalLimits(b, &s, lim) == nil && (len(s.Items) > 4 || len(s.Tags) > 2) {
			t.Fatalf("decoded %d items and %d tags past the limits", len(s.Items), len(s.Tags))
		}
	})
}
