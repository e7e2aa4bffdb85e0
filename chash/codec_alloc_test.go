package chash

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
)

// bigRing is a valid ring of many small nodes: its encoding is the most
// tokens per input byte a valid ring can have.
func bigRing() *Ring {
	r := New(1, 1)
	for i := range 500 {
		r.Insert(notp.Node{ID: fmt.Sprint(i)}, 1)
	}
	return r
}

// forgedRingMsgpack are inputs whose declared lengths the input does not
// hold, or built to make a decoder allocate much more than they weigh.
func forgedRingMsgpack(t *testing.T) map[string][]byte {
	big, err := msgpack.Marshal(bigRing())
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"tokens array32":       []byte("\x81\xa6tokens\xdd\xff\xff\xff\xff\x80"),
		"map32":                []byte("\xdf\xff\xff\xff\xff\xa6tokens"),
		"str32 key":            []byte("\x81\xdb\xff\xff\xff\xf0abc"),
		"bin32 unknown field":  []byte("\x81\xa1x\xc6\xc6\xc6\xc6\x14t\xff"),
		"ext32 unknown field":  []byte("\x81\xa1x\xc9\x7f\xff\xff\xff\x01abc"),
		"str32 node id":        []byte("\x81\xa6tokens\x91\x82\xa5token\x01\xa4node\x81\xa2id\xdb\x7f\xff\xff\xffabc"),
		"bin32 in node":        []byte("\x81\xa6tokens\x91\x82\xa5token\x01\xa4node\x81\xa1x\xc6\x7f\xff\xff\xffabc"),
		"nested arrays":        append([]byte("\x81\xa1x"), bytes.Repeat([]byte{0x91}, 100000)...),
		"empty tokens":         append([]byte("\x81\xa6tokens\xdd\x00\x01\x00\x00"), bytes.Repeat([]byte{0x80}, 0x10000)...),
		"many unknown fields":  append([]byte("\xde\xff\xff"), bytes.Repeat([]byte("\xa1x\xc0"), 0xffff)...),
		"valid ring 500 nodes": big,
	}
}

// TestDecodeMsgpackAllocBounded decodes each forged input many times, as a
// fuzz worker does, through msgpack.Unmarshal (pooled decoders) and through
// a decoder reading a stream of unknown length, and checks what each
// decode allocates against the input's size.
func TestDecodeMsgpackAllocBounded(t *testing.T) {
	for name, in := range forgedRingMsgpack(t) {
		t.Run(name, func(t *testing.T) {
			got, allocs := testutil.AllocPerRun(3, func() {
				var r Ring
				_ = msgpack.Unmarshal(in, &r)
			})
			if want := uint64(32*len(in) + 4096); got > want {
				t.Errorf("Unmarshal of %d bytes allocates %d bytes, want at most %d", len(in), got, want)
			}
			if want := float64(len(in)/2 + 64); allocs > want {
				t.Errorf("Unmarshal of %d bytes makes %.0f allocations, want at most %.0f", len(in), allocs, want)
			}
			got, _ = testutil.AllocPerRun(3, func() {
				var r Ring
				_ = msgpack.NewDecoder(bufio.NewReader(bytes.NewReader(in))).Decode(&r)
			})
			if want := uint64(32*len(in) + 8192); got > want { // bufio.Reader takes 4 KiB
				t.Errorf("decoding a stream of %d bytes allocates %d bytes, want at most %d", len(in), got, want)
			}
		})
	}
}

// TestDecodeMsgpackForgedLength checks the errors for lengths the input
// cannot hold.
func TestDecodeMsgpackForgedLength(t *testing.T) {
	for name, in := range forgedRingMsgpack(t) {
		if name == "valid ring 500 nodes" {
			var r Ring
			if err := msgpack.Unmarshal(in, &r); err != nil || r.Size() != 500 {
				t.Errorf("%s: got %v and %d nodes, want 500 nodes", name, err, r.Size())
			}
			continue
		}
		var r Ring
		if err := msgpack.Unmarshal(in, &r); !errors.Is(err, ErrInvalidRing) {
			t.Errorf("%s: got %v, want ErrInvalidRing", name, err)
		}
	}
	in := []byte("\x81\xa1x\xc6\x00\x20\x00\x00abc") // 2 MiB bin, 3 bytes
	var r Ring
	err := msgpack.NewDecoder(bufio.NewReader(bytes.NewReader(in))).Decode(&r)
	if !errors.Is(err, ErrInvalidRing) || !strings.Contains(err.Error(), "limit on a stream") {
		t.Errorf("stream with a 2 MiB bin: got %v, want the stream limit", err)
	}
}

// TestDecodeJSONAllocBounded is TestDecodeMsgpackAllocBounded for JSON.
// encoding/json allocates more per byte than the msgpack decoder (a value
// per key and number it returns), hence the larger factor.
func TestDecodeJSONAllocBounded(t *testing.T) {
	big, err := json.Marshal(bigRing())
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{
		"valid ring 500 nodes": string(big),
		"empty tokens":         `{"tokens":[` + strings.Repeat(`{},`, 100000) + `{}]}`,
		"null tokens":          `{"tokens":[` + strings.Repeat(`null,`, 100000) + `null]}`,
		"nested unknown":       `{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
		"many unknown fields":  `{` + strings.Repeat(`"x":0,`, 50000) + `"rfactor":1}`,
		"long id":              `{"rfactor":1,"pfactor":1,"tokens":[{"token":"1","node":{"id":"` + strings.Repeat("i", 100000) + `"}}]}`,
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			data := []byte(in)
			got, _ := testutil.AllocPerRun(3, func() {
				var r Ring
				_ = json.Unmarshal(data, &r)
			})
			if want := uint64(64*len(data) + 4096); got > want {
				t.Errorf("UnmarshalJSON of %d bytes allocates %d bytes, want at most %d", len(data), got, want)
			}
		})
	}
}
