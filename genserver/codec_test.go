package genserver

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/internal/wire"
)

// Decoding differs from notp's decodeJob/decodeSingleton: the JSON Buffer
// reviving is gone (payloads are msgpack with raw bin data), and the request
// envelope decoder is strict and never panics.

func TestRequestRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		event string
		data  []byte
	}{
		{"empty", "", nil},
		{"small", "add", []byte{1, 2, 3}},
		{"str8 event", strings.Repeat("e", 40), []byte("x")},
		{"str16 event", strings.Repeat("e", 300), nil},
		{"bin16", "big", bytes.Repeat([]byte{7}, 300)},
		{"bin32", "huge", bytes.Repeat([]byte{9}, 70000)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := encodeRequest(c.event, c.data)
			ev, data, err := decodeRequest(p)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if string(ev) != c.event || !bytes.Equal(data, c.data) {
				t.Fatalf("got (%q, %d bytes), want (%q, %d bytes)", ev, len(data), c.event, len(c.data))
			}
			// The hand encoding is plain msgpack: the reflection codec reads it.
			var m map[string]any
			if err := msgpack.Unmarshal(p, &m); err != nil {
				t.Fatalf("msgpack.Unmarshal: %v", err)
			}
			if m["event"] != c.event {
				t.Fatalf("msgpack event = %v, want %q", m["event"], c.event)
			}
		})
	}
}

// TestDecodeForeignEncodings: payloads written by the msgpack library,
// in either key order and with data as str or nil, decode.
func TestDecodeForeignEncodings(t *testing.T) {
	type ordered struct {
		Data  string `msgpack:"data"`
		Event string `msgpack:"event"`
	}
	p, err := msgpack.Marshal(ordered{Data: "hello", Event: "greet"})
	if err != nil {
		t.Fatal(err)
	}
	ev, data, err := decodeRequest(p)
	if err != nil || string(ev) != "greet" || string(data) != "hello" {
		t.Fatalf("got (%q, %q, %v)", ev, data, err)
	}
	p, err = msgpack.Marshal(map[string]any{"event": "nil", "data": nil})
	if err != nil {
		t.Fatal(err)
	}
	ev, data, err = decodeRequest(p)
	if err != nil || string(ev) != "nil" || data != nil {
		t.Fatalf("got (%q, %v, %v)", ev, data, err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := encodeRequest("ev", []byte("data"))
	cases := map[string][]byte{
		"empty":         nil,
		"not a map":     mp([]any{"ev", []byte("x")}),
		"one key":       mp(map[string]any{"event": "x"}),
		"three keys":    mp(map[string]any{"event": "x", "data": []byte{}, "extra": 1}),
		"wrong key":     mp(map[string]any{"event": "x", "date": []byte{}}),
		"duplicate key": append([]byte{0x82}, append(wire.AppendStr(wire.AppendStr(nil, "event"), "a"), wire.AppendStr(wire.AppendStr(nil, "event"), "b")...)...),
		"event not str": mp(map[string]any{"event": 5, "data": []byte{}}),
		"data is int":   mp(map[string]any{"event": "x", "data": 5}),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"huge length":   {0x82, 0xa5, 'e', 'v', 'e', 'n', 't', 0xdb, 0xff, 0xff, 0xff, 0xff},
		"map16 short":   {0xde, 0x00},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := decodeRequest(p); !errors.Is(err, errMalformed) {
				t.Fatalf("decodeRequest(%x) error = %v, want errMalformed", p, err)
			}
		})
	}
}

// FuzzDecodeRequest: the decoder never panics, and whatever it accepts
// re-encodes to a payload that decodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(encodeRequest("add", []byte{1}))
	f.Add(encodeRequest(strings.Repeat("x", 40), bytes.Repeat([]byte{1}, 300)))
	f.Add([]byte{0x82, 0xa4, 'd', 'a', 't', 'a', 0xc0, 0xa5, 'e', 'v', 'e', 'n', 't', 0xa0})
	f.Add([]byte{0xde, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, p []byte) {
		ev, data, err := decodeRequest(p)
		if err != nil {
			return
		}
		ev2, data2, err := decodeRequest(encodeRequest(string(ev), data))
		if err != nil || !bytes.Equal(ev2, ev) || !bytes.Equal(data2, data) {
			t.Fatalf("round trip of (%q, %x): (%q, %x, %v)", ev, data, ev2, data2, err)
		}
	})
}

func BenchmarkEncodeRequest(b *testing.B) {
	data := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeRequest("increment", data)
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	p := encodeRequest("increment", make([]byte, 32))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}
