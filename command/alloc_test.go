package command

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/internal/testutil"
)

// nodesPayload is {"nodes": [n elements]}, each element elem.
func nodesPayload(n int, elem []byte) []byte {
	b := append([]byte{0x81, 0xa5}, "nodes"...)
	b = binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	return append(b, bytes.Repeat(elem, n)...)
}

// A forged payload cannot make DecodeArgs allocate more than about twenty
// times its size: one of a million nils (1 MB, which decoded into a
// million zero nodes: 40 MB) is rejected before decoding, and the densest
// valid nodes stay within the bound.
func TestDecodeArgsAllocation(t *testing.T) {
	smallest := []byte{0x93, 0xa1, 'a', 0xa1, 'h', 0x01} // ["a", "h", 1]
	cases := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"million nils", nodesPayload(1<<20, []byte{0xc0}), false},
		{"million empty maps", nodesPayload(1<<20, []byte{0x80}), false},
		{"too many nodes", nodesPayload(MaxArgNodes+1, smallest), false},
		{"smallest valid nodes", nodesPayload(MaxArgNodes, smallest), true},
	}
	for _, c := range cases {
		var err error
		got := testutil.Allocated(func() { _, err = DecodeArgs(c.in) })
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, msgpackcheck.ErrLimit) {
			t.Errorf("%s: err = %v, want ErrLimit", c.name, err)
		}
		if limit := 20*uint64(len(c.in)) + 4096; got > limit {
			t.Errorf("%s: allocated %d bytes for %d of payload, want at most %d", c.name, got, len(c.in), limit)
		}
	}
}
