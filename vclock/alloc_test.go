package vclock_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// allocBound is what decoding n bytes may allocate: a small multiple of the
// input plus a fixed overhead (decoder state, the error).
func allocBound(n int) uint64 { return uint64(16*n + 4096) }

// jsonAllocBound is allocBound for JSON: encoding/json's token API
// allocates for every key and number it returns (about 25 to 40 bytes per
// input byte on the inputs below).
func jsonAllocBound(n int) uint64 { return uint64(64*n + 4096) }

// forgedMsgpack are inputs whose declared lengths the input does not hold,
// or that are built to make a decoder allocate much more than they weigh.
func forgedMsgpack() map[string][]byte {
	entry := func(extra string) string {
		return "\x84\xa5count\x01\xa6insert\x01\xa4time\x01" + extra
	}
	many := func(n int, id func(i int) string, body string) []byte {
		var b bytes.Buffer
		b.Write([]byte{0xdf, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		for i := range n {
			s := id(i)
			b.WriteByte(0xa0 | byte(len(s)))
			b.WriteString(s)
			b.WriteString(body)
		}
		return b.Bytes()
	}
	return map[string][]byte{
		// The input a fuzz worker died on: a bin32 of about 3.3 GB in an
		// unknown field of an entry.
		"fuzz worker crash":   []byte("\x81\xa1a\x83\xa5cou\xc6\xc6\xc6\xc6\x14t\xff\xa6insert\x01\xa4time\x01"),
		"str32 id of 4 GB":    []byte("\x81\xdb\xff\xff\xff\xffabc"),
		"str32 field name":    []byte("\x81\xa1a\x81\xdb\xff\xff\xff\xf0abc"),
		"bin32 skipped":       []byte("\x81\xa1a" + entry("\xa1x\xc6\x7f\xff\xff\xffabc")),
		"ext32 skipped":       []byte("\x81\xa1a" + entry("\xa1x\xc9\x7f\xff\xff\xff\x01abc")),
		"str16 skipped":       []byte("\x81\xa1a" + entry("\xa1x\xda\xff\xffabc")),
		"array32 skipped":     []byte("\x81\xa1a" + entry("\xa1x\xdd\xff\xff\xff\xff\x01")),
		"map32 of entries":    []byte("\xdf\xff\xff\xff\xff\xa1a"),
		"nested arrays":       []byte("\x81\xa1a" + entry("\xa1x"+strings.Repeat("\x91", 100000))),
		"many entries":        many(4000, func(i int) string { return fmt.Sprintf("%x", i) }, "\x83\xa5count\x01\xa6insert\x01\xa4time\x01"),
		"many bad entries":    many(4000, func(i int) string { return fmt.Sprintf("%x", i) }, "\x80"),
		"many unknown fields": []byte("\x81\xa1a\xde\x1f\x40" + strings.Repeat("\xa1x\xc0", 8000)),
	}
}

// TestDecodeMsgpackAllocBounded decodes each forged input many times, as a
// fuzz worker does, through msgpack.Unmarshal (pooled decoders) and through
// a decoder reading a stream of unknown length, and checks what each
// decode allocates against the input's size.
func TestDecodeMsgpackAllocBounded(t *testing.T) {
	for name, in := range forgedMsgpack() {
		t.Run(name, func(t *testing.T) {
			got, allocs := testutil.AllocPerRun(5, func() { _ = msgpack.Unmarshal(in, vclock.New()) })
			if want := allocBound(len(in)); got > want {
				t.Errorf("Unmarshal of %d bytes allocates %d bytes, want at most %d", len(in), got, want)
			}
			if want := float64(len(in)/4 + 64); allocs > want {
				t.Errorf("Unmarshal of %d bytes makes %.0f allocations, want at most %.0f", len(in), allocs, want)
			}
			got, _ = testutil.AllocPerRun(5, func() {
				dec := msgpack.NewDecoder(bufio.NewReader(bytes.NewReader(in)))
				_ = dec.Decode(vclock.New())
			})
			// bufio.NewReader itself allocates 4 KiB.
			if want := allocBound(len(in)) + 4096; got > want {
				t.Errorf("decoding a stream of %d bytes allocates %d bytes, want at most %d", len(in), got, want)
			}
		})
	}
}

// TestDecodeMsgpackForgedLength checks the errors for lengths the input
// cannot hold.
func TestDecodeMsgpackForgedLength(t *testing.T) {
	for name, in := range forgedMsgpack() {
		if strings.HasPrefix(name, "many entries") {
			continue // valid
		}
		err := msgpack.Unmarshal(in, vclock.New())
		if !errors.Is(err, vclock.ErrInvalidClock) {
			t.Errorf("%s: got %v, want ErrInvalidClock", name, err)
		}
	}
	// A stream that does not report its length: a str, bin or ext longer
	// than a megabyte is refused before it is read.
	in := []byte("\x81\xa1a\x84\xa5count\x01\xa6insert\x01\xa4time\x01\xa1x\xc6\x00\x20\x00\x00abc")
	err := msgpack.NewDecoder(bufio.NewReader(bytes.NewReader(in))).Decode(vclock.New())
	if !errors.Is(err, vclock.ErrInvalidClock) || !strings.Contains(err.Error(), "limit on a stream") {
		t.Errorf("stream with a 2 MiB bin: got %v, want the stream limit", err)
	}
}

// TestDecodeJSONAllocBounded is TestDecodeMsgpackAllocBounded for JSON.
func TestDecodeJSONAllocBounded(t *testing.T) {
	var many strings.Builder
	many.WriteString("{")
	for i := range 4000 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"%x":{"count":1,"insert":1,"time":1}`, i)
	}
	many.WriteString("}")
	inputs := map[string]string{
		"many entries":        many.String(),
		"many unknown fields": `{"a":{` + strings.Repeat(`"x":0,`, 10000) + `"count":1,"insert":1,"time":1}}`,
		"nested unknown":      `{"a":{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `,"count":1,"insert":1,"time":1}}`,
		"deep too far":        `{"a":{"x":` + strings.Repeat("[", 100000) + `}}`,
		"long id":             `{"` + strings.Repeat("i", 100000) + `":{"count":1,"insert":1,"time":1}}`,
		"unterminated":        `{"a":{"x":"` + strings.Repeat("s", 100000),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			data := []byte(in)
			got, _ := testutil.AllocPerRun(10, func() { _ = vclock.New().UnmarshalJSON(data) })
			if want := jsonAllocBound(len(data)); got > want {
				t.Errorf("UnmarshalJSON of %d bytes allocates %d bytes, want at most %d", len(data), got, want)
			}
		})
	}
	if err := json.Unmarshal([]byte(many.String()), vclock.New()); err != nil {
		t.Fatalf("many entries: %v", err)
	}
}
