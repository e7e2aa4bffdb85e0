package msgpackcheck

import (
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

type sample struct {
	Name  string            `msgpack:"name"`
	Items []sampleItem      `msgpack:"items"`
	Blob  []byte            `msgpack:"blob"`
	Tags  map[string]string `msgpack:"tags"`
	N     int64             `msgpack:"n"`
	F     float64           `msgpack:"f"`
	Ok    bool              `msgpack:"ok"`
	Nil   *int              `msgpack:"nil"`
}

type sampleItem struct {
	ID string `msgpack:"id"`
	W  uint32 `msgpack:"w"`
}

// Every value the encoder produces passes Check and round-trips.
func TestValidValues(t *testing.T) {
	values := []any{
		nil, true, false, 0, -1, 127, -33, 255, 65535, 1 << 40, -1 << 40, 1.5, float32(2.5),
		"", "short", string(make([]byte, 300)), string(make([]byte, 70000)),
		[]byte{}, make([]byte, 200), make([]byte, 70000),
		[]int{}, make([]int, 20), make([]int, 70000),
		map[string]int{}, map[string]int{"a": 1, "b": 2},
		sample{Name: "x", Items: []sampleItem{{"a", 1}, {"b", 1 << 31}}, Blob: []byte("zz"), Tags: map[string]string{"k": "v"}, N: -5, F: 3.25, Ok: true},
	}
	for i, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(b); err != nil {
			t.Errorf("value %d (%T): Check = %v", i, v, err)
		}
	}
	in := sample{Name: "n", Items: []sampleItem{{"a", 7}}, Tags: map[string]string{"x": "y"}, N: 9}
	b, _ := msgpack.Marshal(in)
	var out sample
	if err := Unmarshal(b, &out); err != nil || out.Name != "n" || len(out.Items) != 1 || out.Items[0].W != 7 || out.Tags["x"] != "y" || out.N != 9 {
		t.Fatalf("Unmarshal = %+v, %v", out, err)
	}
	// Extension values (timestamps) pass too.
	ext, _ := msgpack.Marshal(map[string]any{"t": int64(1)})
	if err := Check(ext); err != nil {
		t.Fatal(err)
	}
}

// Forged lengths, deep nesting, invalid codes, truncation and trailing
// bytes are rejected with ErrMalformed, and Unmarshal allocates little on
// them.
func TestRejects(t *testing.T) {
	deep := make([]byte, 0, 100)
	for range MaxDepth + 2 {
		deep = append(deep, 0x91) // fixarray of 1
	}
	deep = append(deep, 0x01)
	cases := map[string][]byte{
		"empty":              {},
		"bin32 4GB":          {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00},
		"str32 4GB":          {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		"array32 huge":       {0xdd, 0x0f, 0xff, 0xff, 0xff, 0x01, 0x02},
		"map32 huge":         {0xdf, 0x0f, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01},
		"struct items array": {0x81, 0xa5, 'i', 't', 'e', 'm', 's', 0xdd, 0x10, 0x00, 0x00, 0x00, 0x80},
		"ext32 huge":         {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		"fixstr short":       {0xa5, 'a', 'b'},
		"uint64 short":       {0xcf, 0x00, 0x01},
		"array16 short":      {0xdc, 0x00},
		"invalid code":       {0xc1},
		"trailing":           {0x01, 0x02},
		"too deep":           deep,
		"map missing value":  {0x81, 0xa1, 'a'},
	}
	for name, b := range cases {
		err := Check(b)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v, want ErrMalformed", name, err)
		}
		var s sample
		allocs := testing.AllocsPerRun(1, func() { _ = Unmarshal(b, &s) })
		if allocs > 20 {
			t.Errorf("%s: Unmarshal made %v allocations", name, allocs)
		}
	}
}

// FuzzCheck: Check never panics, and whatever it accepts decodes into a
// generic value without error-free over-allocation (the decode may fail on
// types, never on sizes beyond the input).
func FuzzCheck(f *testing.F) {
	for _, v := range []any{nil, 1, "x", []byte("b"), []int{1, 2}, map[string]any{"a": []any{1, "b", map[string]int{"c": 3}}}} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte{0xc6, 0xff, 0xff, 0xff, 0xff, 0x00})
	f.Add([]byte{0xdd, 0x0f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b) != nil {
			return
		}
		var v any
		_ = Unmarshal(b, &v)
		var s sample
		_ = Unmarshal(b, &s)
	})
}
