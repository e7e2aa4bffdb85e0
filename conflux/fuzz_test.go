package conflux

import (
	"bytes"
	"testing"
)

// FuzzDecodeEntry: any bytes decode to an entry or an error, never a
// panic; an encoded entry decodes back to itself.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, &entry{A: []byte{0x05}, C: "client", Q: 3, P: 9}))
	f.Add(appendEntry(nil, &entry{A: nil}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e entry
		if err := decodeEntry(b, &e); err != nil {
			return
		}
		if len(e.C) > MaxClientLen {
			t.Fatalf("client of %d bytes accepted", len(e.C))
		}
		again := appendEntry(nil, &e)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}
