package logentry

import (
	"bytes"
	"testing"
)

// FuzzDecode: any bytes decode to an entry or an error, never a panic; an
// entry Decode accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, &Entry{A: []byte{0x05}, C: "client", Q: 3, P: 9}))
	f.Add(Append(nil, &Entry{A: nil}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := Decode(b, &e); err != nil {
			return
		}
		if len(e.C) > MaxClientLen {
			t.Fatalf("client of %d bytes accepted", len(e.C))
		}
		again := Append(nil, &e)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}
