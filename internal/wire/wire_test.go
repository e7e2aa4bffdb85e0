package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/notp-go/notp"
)

func sampleEnvelopes() []Envelope {
	return []Envelope{
		{Kind: KindMsg, ID: "echo", Data: []byte("hi")},
		{Kind: KindMsg, ID: "echo", Tag: "tag1", Stream: &Stream{ID: "s", Done: true}, Data: bytes.Repeat([]byte{7}, 70000)},
		{Kind: KindReply, ID: "t", Err: &Error{Code: "C", Message: "m", Fields: map[string]string{"a": "b"}}},
		{Kind: KindPing, Tag: string(bytes.Repeat([]byte("x"), 300))},
		{Kind: KindPong, ID: "t", Data: []byte{}},
		{Kind: KindCredit, ID: "t", Data: AppendCredit(nil, StreamWindow)},
		{Kind: KindCredit, ID: "t", Err: &Error{Code: "CANCELED", Message: "reader closed"}},
	}
}

func TestDecodeEnvelopeWithName(t *testing.T) {
	const interned = "echo"
	for _, e := range sampleEnvelopes() {
		b := AppendEnvelope(nil, &e)
		var got Envelope
		err := DecodeEnvelopeWith(b, &got, func(p []byte) string {
			if string(p) == interned {
				return interned
			}
			return string(p)
		})
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Fatalf("DecodeEnvelopeWith(%+v) = %+v, %v", e, got, err)
		}
	}
}

func TestCredit(t *testing.T) {
	for _, n := range []uint32{0, 1, StreamWindow, 1<<32 - 1} {
		if got, err := ParseCredit(AppendCredit(nil, n)); err != nil || got != n {
			t.Fatalf("ParseCredit(AppendCredit(%d)) = %d, %v", n, got, err)
		}
	}
	for _, d := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if _, err := ParseCredit(d); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseCredit(%v) = %v, want ErrMalformed", d, err)
		}
	}
	// Kinds past the last one stay rejected.
	b := AppendEnvelope(nil, &Envelope{Kind: KindCredit + 1, ID: "t"})
	var e Envelope
	if err := DecodeEnvelope(b, &e); !errors.Is(err, ErrMalformed) {
		t.Fatalf("kind %d accepted: %v", KindCredit+1, err)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range sampleEnvelopes() {
		b := AppendEnvelope(nil, &e)
		var got Envelope
		if err := DecodeEnvelope(b, &got); err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip: got %+v, want %+v", got, e)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := AppendEnvelope(nil, &Envelope{Kind: KindMsg, ID: "x", Data: []byte("d")})
	for i := range good {
		var e Envelope
		if err := DecodeEnvelope(good[:i], &e); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	var e Envelope
	if err := DecodeEnvelope(append(good, 0), &e); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := Hello{Version: Version, Flags: FlagInsecure, Node: notp.Node{ID: "a", Host: "h", Port: 7022}, Nonce: make([]byte, NonceSize)}
	b := AppendHello(nil, &h)
	var got Hello
	if err := DecodeHello(b[HeaderSize:], &got); err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("hello round trip: %+v, %v", got, err)
	}
}

// maxSeed is the largest fuzz seed: the fuzzer mutates every byte of its
// inputs, so a 70 KB seed (the sample whose data spans several frames)
// slows it to a few executions per second and nothing is explored. Larger
// samples go through the same checks in TestLargeSamples.
const maxSeed = 512

// fuzzSeeds returns the encodings of the sample envelopes of at most
// maxSeed bytes, and the larger ones apart.
func fuzzSeeds() (small, large []Envelope) {
	for _, e := range sampleEnvelopes() {
		if len(AppendEnvelope(nil, &e)) <= maxSeed {
			small = append(small, e)
		} else {
			large = append(large, e)
		}
	}
	return small, large
}

// TestLargeSamples runs the fuzz targets' checks on the samples too large
// to seed them with.
func TestLargeSamples(t *testing.T) {
	_, large := fuzzSeeds()
	if len(large) == 0 {
		t.Fatal("no large samples: the fuzz targets are seeded with all of them, drop this test")
	}
	var rec []byte
	for _, e := range large {
		b := AppendEnvelope(nil, &e)
		checkEnvelope(t, b)
		rec = AppendFrame(rec, &e)
	}
	checkFrames(t, rec)
}

func FuzzEnvelope(f *testing.F) {
	small, _ := fuzzSeeds()
	for _, e := range small {
		f.Add(AppendEnvelope(nil, &e))
	}
	f.Fuzz(checkEnvelope)
}

// checkEnvelope: decoding b never panics, agrees with DecodeEnvelopeWith,
// and whatever decodes owns its memory and re-encodes to an equal envelope.
func checkEnvelope(t *testing.T, b []byte) {
	var e Envelope
	err := DecodeEnvelope(b, &e)
	// With a name function, the same result (it only supplies strings).
	var ew Envelope
	calls := 0
	errW := DecodeEnvelopeWith(b, &ew, func(p []byte) string { calls++; return string(p) })
	if (err == nil) != (errW == nil) || err == nil && !reflect.DeepEqual(e, ew) {
		t.Fatalf("DecodeEnvelopeWith = %+v, %v; DecodeEnvelope = %+v, %v", ew, errW, e, err)
	}
	if err == nil && (calls == 1) != (e.Kind == KindMsg) {
		t.Fatalf("name function called %d times for kind %d", calls, e.Kind)
	}
	if err != nil {
		return
	}
	if e.Kind == KindCredit && e.Err == nil {
		if n, err := ParseCredit(e.Data); err == nil && !bytes.Equal(AppendCredit(nil, n), e.Data) {
			t.Fatalf("credit %x parsed as %d", e.Data, n)
		}
	}
	// e owns its strings and data: clobbering the input changes nothing,
	// and appending to Data does not reach the strings sharing its
	// allocation.
	want := AppendEnvelope(nil, &e)
	clear(b)
	if len(e.Data) > 0 {
		_ = append(e.Data, 0xee)
		e.Data[0] ^= 0xff
		e.Data[0] ^= 0xff
	}
	if got := AppendEnvelope(nil, &e); !bytes.Equal(got, want) {
		t.Fatalf("decoded envelope aliases its input: %x, want %x", got, want)
	}
	again := AppendEnvelope(nil, &e)
	var e2 Envelope
	if err := DecodeEnvelope(again, &e2); err != nil || !reflect.DeepEqual(e, e2) {
		t.Fatalf("re-decode: %+v vs %+v, %v", e, e2, err)
	}
}

func FuzzHello(f *testing.F) {
	f.Add(AppendHello(nil, &Hello{Version: 1, Node: notp.Node{ID: "a", Host: "h", Port: 1}, Nonce: make([]byte, NonceSize)})[HeaderSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hello
		if err := DecodeHello(b, &h); err != nil {
			return
		}
		var h2 Hello
		if err := DecodeHello(AppendHello(nil, &h)[HeaderSize:], &h2); err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("re-decode: %+v vs %+v, %v", h, h2, err)
		}
	})
}

func FuzzFrames(f *testing.F) {
	small, _ := fuzzSeeds()
	var rec []byte
	for _, e := range small {
		rec = AppendFrame(rec, &e)
	}
	f.Add(rec)
	f.Add(AppendFrame(nil, &small[0]))
	f.Fuzz(checkFrames)
}

// checkFrames: splitting p never panics and, when it succeeds, the frames
// cover all of p.
func checkFrames(t *testing.T, p []byte) {
	var n int
	err := SplitFrames(p, 1<<20, func(fr []byte) error {
		n += HeaderSize + len(fr)
		var e Envelope
		return DecodeEnvelope(fr, &e)
	})
	if err == nil && n != len(p) {
		t.Fatalf("frames cover %d of %d bytes", n, len(p))
	}
}

func BenchmarkEnvelopeEncode(b *testing.B) {
	e := Envelope{Kind: KindMsg, ID: "echo", Tag: "0123456789abcdef0123456789abcdef.1a", Data: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], &e)
	}
}

func BenchmarkEnvelopeDecode(b *testing.B) {
	e := Envelope{Kind: KindMsg, ID: "echo", Tag: "0123456789abcdef0123456789abcdef.1a", Data: make([]byte, 64)}
	buf := AppendEnvelope(nil, &e)
	b.ReportAllocs()
	var got Envelope
	for b.Loop() {
		if err := DecodeEnvelope(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

// Each part of an envelope is checked where it is read, and the error
// says what was wrong with it.
func TestDecodeEnvelopeRejectsParts(t *testing.T) {
	env := func(parts ...[]byte) []byte { return append([]byte{0x96}, bytes.Join(parts, nil)...) }
	str := func(s string) []byte { return AppendStr(nil, s) }
	nilv := []byte{mpNil}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"not an array", []byte{0x80}, "expected an array"},
		{"five elements", []byte{0x95, 1, 0xa0, 0xa0, mpNil, mpNil}, "6-element"},
		{"kind 0", env([]byte{0}, str(""), str(""), nilv, nilv, nilv), "unknown envelope kind"},
		{"kind past the last", env([]byte{kindMax + 1}, str(""), str(""), nilv, nilv, nilv), "unknown envelope kind"},
		{"negative kind", env([]byte{0xff}, str(""), str(""), nilv, nilv, nilv), "expected an integer"},
		{"id not a str", env([]byte{1}, AppendBin(nil, []byte("x")), str(""), nilv, nilv, nilv), "expected a string"},
		{"stream of one", env([]byte{1}, str("x"), str(""), []byte{0x91, 0xa0}, nilv, nilv), "stream is not a 2-element"},
		{"stream done not a bool", env([]byte{1}, str("x"), str(""), []byte{0x92, 0xa0, 0x01}, nilv, nilv), "expected a bool"},
		{"error of two", env([]byte{2}, str("t"), str(""), nilv, []byte{0x92, 0xa0, 0xa0}, nilv), "error is not a 3-element"},
		{"error field not a str", env([]byte{2}, str("t"), str(""), nilv, []byte{0x93, 0xa0, 0xa0, 0x81, 0xa1, 'k', 0x01}, nilv), "expected a string"},
		{"fields map too long", env([]byte{2}, str("t"), str(""), nilv, []byte{0x93, 0xa0, 0xa0, 0xdf, 0x7f, 0, 0, 0}, nilv), "map declares"},
		{"data as a str", env([]byte{1}, str("x"), str(""), nilv, nilv, str("d")), "expected binary data"},
		{"data longer than the input", env([]byte{1}, str("x"), str(""), nilv, nilv, []byte{mpBin32, 0xff, 0xff, 0xff, 0xff}), "item of"},
	}
	for _, tt := range tests {
		var e Envelope
		err := DecodeEnvelope(tt.in, &e)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrMalformed mentioning %q", tt.name, err, tt.want)
		}
	}
}

// Data keeps the nil/empty distinction of the sender; a small envelope's
// strings and data share one allocation and a large Data has its own, so a
// kept Tag does not pin a large payload.
func TestDecodeEnvelopeData(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		own  bool // Data in an allocation of its own
	}{
		{nil, false},
		{[]byte{}, false},
		{make([]byte, maxSharedData), false},
		{make([]byte, maxSharedData+1), true},
	} {
		in := AppendEnvelope(nil, &Envelope{Kind: KindReply, ID: "tag", Tag: "t2", Data: tc.data})
		var e Envelope
		if err := DecodeEnvelope(in, &e); err != nil {
			t.Fatal(err)
		}
		if (e.Data == nil) != (tc.data == nil) || len(e.Data) != len(tc.data) {
			t.Fatalf("data of %d bytes (nil %v) decoded as %d bytes (nil %v)", len(tc.data), tc.data == nil, len(e.Data), e.Data == nil)
		}
		if len(e.Data) == 0 {
			continue
		}
		// Addresses compared as numbers: the strings come first in a
		// shared allocation, Data right after them.
		strs := uintptr(unsafe.Pointer(unsafe.StringData(e.ID)))
		shared := uintptr(unsafe.Pointer(unsafe.SliceData(e.Data))) == strs+uintptr(len(e.ID)+len(e.Tag))
		if shared == tc.own || cap(e.Data) != len(e.Data) {
			t.Fatalf("data of %d bytes: shares the strings' allocation %v (want %v), cap %d", len(tc.data), shared, !tc.own, cap(e.Data))
		}
	}
}
