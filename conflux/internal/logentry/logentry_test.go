package logentry

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := Entry{A: []byte{0x92, 0x01, 0x02}, C: "client", Q: 7, P: 1 << 40}
	b := Append([]byte("prefix"), &in)
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatalf("Append did not append: %x", b)
	}
	b = b[len("prefix"):]
	if got := b[ActionOffset(in.C):]; !bytes.Equal(got, in.A) {
		t.Fatalf("action at offset %d: %x, want %x", ActionOffset(in.C), got, in.A)
	}
	var out Entry
	if err := Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.A, in.A) || out.C != in.C || out.Q != in.Q || out.P != in.P {
		t.Fatalf("decoded %+v, want %+v", out, in)
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	good := Append(nil, &Entry{A: []byte{0xc0}, C: "c", Q: 1, P: 2})
	long := Append(nil, &Entry{C: strings.Repeat("x", MaxClientLen+1)})
	max := Append(nil, &Entry{C: strings.Repeat("x", MaxClientLen)})
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"short header", good[:HeaderLen-1], false},
		{"unknown version", append([]byte{Version + 1}, good[1:]...), false},
		{"client cut short", good[:HeaderLen], false},
		{"client over the limit", long, false},
		{"client at the limit", max, true},
		{"no action", good[:HeaderLen+1], true},
		{"whole", good, true},
	} {
		var e Entry
		err := Decode(tc.b, &e)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", tc.name, err)
		}
	}
}
