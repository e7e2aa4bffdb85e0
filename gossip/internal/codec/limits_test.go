package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/vclock"
)

// allocated returns the bytes f allocates (testutil's helper links
// memberlist, which this package's tests must not).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// replaceEntries returns the encoding of a message or file whose entries
// are n nils: a 1 MB input declaring a million entries.
func replaceEntries(t *testing.T, raw []byte, n uint32) []byte {
	t.Helper()
	nils := binary.BigEndian.AppendUint32([]byte{0xdd}, n)
	nils = append(nils, bytes.Repeat([]byte{0xc0}, int(n))...)
	key := []byte{0xa7, 'e', 'n', 't', 'r', 'i', 'e', 's'}
	in := bytes.Replace(raw, append(key, 0xc0), append(key, nils...), 1)
	if len(in) < int(n) {
		t.Fatal("entries not replaced")
	}
	return in
}

// A cookie holder's 1 MB message of a million nil entries decoded into a
// million zero entries (about 370 MB for a 4 MB message) before
// validation rejected them; it is now refused before decoding. A flush
// file of the same shape is refused the same way.
func TestDecodeNilEntriesBounded(t *testing.T) {
	const n = 1 << 20
	raw, err := msgpack.Marshal(&RawMessage{V: Version, Type: MsgUpdate, Ring: "ring",
		Clock: MustEncode(vclock.New()), Entries: msgpack.RawMessage{0xc0}})
	if err != nil {
		t.Fatal(err)
	}
	in := replaceEntries(t, raw, n)
	var derr error
	got := allocated(func() { _, derr = DecodeMessage(in) })
	if !errors.Is(derr, ErrInvalidMessage) || !errors.Is(derr, msgpackcheck.ErrLimit) {
		t.Fatalf("DecodeMessage = %v, want ErrInvalidMessage wrapping msgpackcheck.ErrLimit", derr)
	}
	if got > 64<<10 {
		t.Fatalf("decoding %d bytes allocated %d bytes before rejecting them", len(in), got)
	}

	file := replaceEntries(t, MustEncode(&FileState{Version: Version, Self: "a", Clock: vclock.New()}), n)
	got = allocated(func() { _, derr = ReadFile(AppendTrailer(file), "a") })
	if !errors.Is(derr, ErrCorrupt) || !errors.Is(derr, msgpackcheck.ErrLimit) {
		t.Fatalf("ReadFile = %v, want ErrCorrupt wrapping msgpackcheck.ErrLimit", derr)
	}
	// AppendTrailer's copy of the input is inside the measure: the decoder
	// itself must add no more than the message's bound.
	if limit := uint64(2*len(file)) + 64<<10; got > limit {
		t.Fatalf("reading a file of %d bytes allocated %d bytes, more than %d", len(file), got, limit)
	}
}

func clockOf(counts map[string]uint64) *vclock.Clock {
	c := vclock.New()
	for id, n := range counts {
		c.Update(id, n)
	}
	return c
}

// Versions, clock counts and floors of 2^53 are accepted; above, beyond
// what a JSON (JavaScript) peer represents exactly, they are rejected, in
// a message and in a file.
func TestVersionsAbove2p53Rejected(t *testing.T) {
	big := uint64(MaxVersion + 1)
	e := ent("x", 1, "w", false, 1)
	ok := EncodeMessage(&Message{Type: MsgUpdate, Ring: "r", Clock: clockOf(map[string]uint64{"w": MaxVersion}),
		Entries: []Entry{{Node: e.Node, Weight: 1, Version: MaxVersion, Writer: "w"}}})
	if _, err := DecodeMessage(ok); err != nil {
		t.Fatalf("versions of 2^53: %v", err)
	}
	for name, m := range map[string]*Message{
		"entry version": {Type: MsgUpdate, Ring: "r", Clock: vclock.New(),
			Entries: []Entry{{Node: e.Node, Weight: 1, Version: big, Writer: "w"}}},
		"clock count": {Type: MsgDigest, Ring: "r", Clock: clockOf(map[string]uint64{"w": big})},
		"floor":       {Type: MsgJoin, Ring: "r", Clock: vclock.New(), Floor: big},
	} {
		if _, err := DecodeMessage(EncodeMessage(m)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s above 2^53: err = %v", name, err)
		}
	}
	f := MustEncode(&FileState{Version: Version, Self: "a", Clock: clockOf(map[string]uint64{"a": big})})
	if _, err := DecodeFile(f, "a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("file with a clock count above 2^53: err = %v", err)
	}
}
