package vclock_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/notp-go/notp/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// The JSON form is the id -> {count, insert, time} map, here in ascending id
// order so the bytes are deterministic.
func TestJSONForm(t *testing.T) {
	c := clockOf(t, entries{"b": {Count: 2, Insert: 3, Time: 4}, "a": {Count: 1, Insert: 5, Time: 6}})
	got, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":{"count":1,"insert":5,"time":6},"b":{"count":2,"insert":3,"time":4}}`
	if string(got) != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
	// The same layout as encoding/json gives the plain map.
	plain, _ := json.Marshal(map[string]vclock.Entry{"b": {Count: 2, Insert: 3, Time: 4}, "a": {Count: 1, Insert: 5, Time: 6}})
	if !bytes.Equal(got, plain) {
		t.Fatalf("JSON %s differs from the plain map's %s", got, plain)
	}
	if b, _ := json.Marshal(vclock.New()); string(b) != "{}" {
		t.Fatalf("empty clock JSON = %s", b)
	}
}

func TestMsgpackForm(t *testing.T) {
	c := clockOf(t, entries{"b": {Count: 2, Insert: 3, Time: 4}, "a": {Count: 1, Insert: 5, Time: 6}})
	got, err := msgpack.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]int64
	if err := msgpack.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["a"]["count"] != 1 || m["a"]["insert"] != 5 || m["b"]["time"] != 4 {
		t.Fatalf("msgpack form decodes as %v", m)
	}
	again, _ := msgpack.Marshal(c.Clone())
	if !bytes.Equal(got, again) {
		t.Fatal("msgpack encoding is not deterministic")
	}
	d := vclock.New()
	if err := msgpack.Unmarshal(got, d); err != nil || !d.Equal(c) {
		t.Fatalf("round trip: %v, %v", d, err)
	}
}

// codecs are the two encodings a clock travels in.
var codecs = []struct {
	name      string
	marshal   func(any) ([]byte, error)
	unmarshal func([]byte, any) error
}{
	{"json", json.Marshal, json.Unmarshal},
	{"msgpack", msgpack.Marshal, msgpack.Unmarshal},
}

// notp's fromJSON adopted the decoded object (and its size); the port decodes
// into a fresh map, so neither the input buffer nor the source clock is
// shared.
func TestDecodeCopies(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			src := clockOf(t, entries{"a": {Count: 1, Insert: 2, Time: 3}, "b": {Count: 4, Insert: 5, Time: 6}})
			want := src.Clone()
			buf, err := codec.marshal(src)
			if err != nil {
				t.Fatal(err)
			}
			got := vclock.New()
			got.Insert("stale") // decoding replaces, not merges
			if err := codec.unmarshal(buf, got); err != nil {
				t.Fatal(err)
			}
			if got.Size() != 2 || !got.Equal(want) {
				t.Fatalf("decoded %v (size %d), want %v", got, got.Size(), want)
			}
			clear(buf) // ids must not point into the input
			src.Increment("a")
			src.Remove("b")
			if !got.Equal(want) {
				t.Fatalf("decoded clock changed with its input: %v", got)
			}
			got.Increment("c")
			if src.Has("c") {
				t.Fatal("source changed with the decoded clock")
			}
		})
	}
}

// notp's validJSON accepted objects and rejected strings; the port's decoders
// return errors wrapping ErrInvalidClock instead, and leave the clock
// unchanged.
func TestDecodeRejects(t *testing.T) {
	bad := map[string]string{
		"string":            `"clock"`,
		"array":             `[]`,
		"null":              `null`,
		"number":            `1`,
		"entry not object":  `{"a":1}`,
		"entry null":        `{"a":null}`,
		"empty id":          `{"":{"count":1,"insert":1,"time":1}}`,
		"duplicate id":      `{"a":{"count":1,"insert":1,"time":1},"a":{"count":2,"insert":1,"time":1}}`,
		"missing field":     `{"a":{"count":1,"insert":1}}`,
		"duplicate field":   `{"a":{"count":1,"count":2,"insert":1,"time":1}}`,
		"negative count":    `{"a":{"count":-1,"insert":1,"time":1}}`,
		"negative time":     `{"a":{"count":1,"insert":1,"time":-1}}`,
		"fractional count":  `{"a":{"count":1.5,"insert":1,"time":1}}`,
		"exponent":          `{"a":{"count":1e3,"insert":1,"time":1}}`,
		"string count":      `{"a":{"count":"1","insert":1,"time":1}}`,
		"count overflow":    `{"a":{"count":18446744073709551616,"insert":1,"time":1}}`,
		"time overflow":     `{"a":{"count":1,"insert":9223372036854775808,"time":1}}`,
		"trailing data":     `{} {}`,
		"truncated":         `{"a":{"count":1`,
		"garbage":           `{"a":{"count":1,"insert":1,"time":1}`,
		"bad unknown field": `{"a":{"count":1,"insert":1,"time":1,"x":}}`,
	}
	for name, in := range bad {
		t.Run("json/"+name, func(t *testing.T) {
			c := clockOf(t, entries{"keep": {Count: 9}})
			err := c.UnmarshalJSON([]byte(in))
			if !errors.Is(err, vclock.ErrInvalidClock) {
				t.Fatalf("UnmarshalJSON(%s) = %v, want ErrInvalidClock", in, err)
			}
			if c.Size() != 1 || c.Count("keep") != 9 {
				t.Fatalf("failed decode changed the clock: %v", c)
			}
			// The same document as msgpack, where it can be expressed.
			// Duplicates cannot be expressed through a Go map (see
			// TestMsgpackDuplicates) and msgpack.Unmarshal handles nil
			// itself (see TestMsgpackNil).
			b, ok := jsonToMsgpack(t, in)
			if !ok || strings.HasPrefix(name, "duplicate") || name == "null" {
				return
			}
			if err := msgpack.Unmarshal(b, c); !errors.Is(err, vclock.ErrInvalidClock) {
				t.Fatalf("msgpack %x = %v, want ErrInvalidClock", b, err)
			}
		})
	}
}

// A JSON decoding error stays in the chain under ErrInvalidClock, as the
// msgpack decoder's does, whether it comes before the clock's opening
// brace, inside an entry or at its closing one.
func TestDecodeKeepsTheCause(t *testing.T) {
	for name, in := range map[string]string{
		"opening": `@`,
		"entry":   `{"a":{"count":1,"insert":1,"time":1]}`,
		"closing": `{"a":{"count":1,"insert":1,"time":1}]`,
	} {
		err := vclock.New().UnmarshalJSON([]byte(in))
		var syntax *json.SyntaxError
		if !errors.Is(err, vclock.ErrInvalidClock) || !errors.As(err, &syntax) {
			t.Errorf("%s: UnmarshalJSON(%s) = %v, want ErrInvalidClock wrapping a *json.SyntaxError", name, in, err)
		}
	}
	if err := vclock.New().UnmarshalJSON([]byte(`{"a":{"count":1,"insert":1,"time":1}`)); !errors.Is(err, io.EOF) {
		t.Errorf("UnmarshalJSON of an unclosed clock = %v, want it to wrap io.EOF", err)
	}
}

func TestDecodeAccepts(t *testing.T) {
	good := map[string]struct {
		in   string
		want entries
	}{
		"empty":           {`{}`, entries{}},
		"unknown field":   {`{"a":{"x":[1,{"y":2}],"count":1,"insert":2,"time":3}}`, entries{"a": {Count: 1, Insert: 2, Time: 3}}},
		"max values":      {`{"a":{"count":18446744073709551615,"insert":9223372036854775807,"time":0}}`, entries{"a": {Count: 1<<64 - 1, Insert: 1<<63 - 1}}},
		"any field order": {` { "a" : { "time":3, "insert":2, "count":1 } } `, entries{"a": {Count: 1, Insert: 2, Time: 3}}},
	}
	for name, tt := range good {
		t.Run(name, func(t *testing.T) {
			c := vclock.New()
			if err := c.UnmarshalJSON([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if c.Size() != len(tt.want) {
				t.Fatalf("size %d, want %d", c.Size(), len(tt.want))
			}
			for id, e := range tt.want {
				if got := mustGet(t, c, id); got != e {
					t.Fatalf("%s = %+v, want %+v", id, got, e)
				}
			}
		})
	}
}

// The msgpack decoder accepts any integer encoding of a non-negative value
// and rejects nil and negative numbers, which msgpack's DecodeUint64 would
// let through as 0 or a wrapped value.
func TestMsgpackIntegers(t *testing.T) {
	encode := func(count any) []byte {
		b, err := msgpack.Marshal(map[string]map[string]any{"a": {"count": count, "insert": int8(1), "time": uint16(2)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, v := range []any{int8(3), int16(3), int32(3), int64(3), uint8(3), uint32(3), uint64(3)} {
		c := vclock.New()
		if err := msgpack.Unmarshal(encode(v), c); err != nil || c.Count("a") != 3 {
			t.Errorf("count %T(3): %v, count %d", v, err, c.Count("a"))
		}
	}
	for _, v := range []any{nil, int8(-1), int64(-1), 1.0, "3", true} {
		if err := msgpack.Unmarshal(encode(v), vclock.New()); !errors.Is(err, vclock.ErrInvalidClock) {
			t.Errorf("count %#v: %v, want ErrInvalidClock", v, err)
		}
	}
}

// msgpack.Unmarshal handles a top-level nil itself by zeroing the target,
// which leaves a usable empty clock; DecodeMsgpack called directly rejects it.
func TestMsgpackNil(t *testing.T) {
	c := vclock.New()
	c.Increment("a")
	if err := msgpack.Unmarshal([]byte{0xc0}, c); err != nil || c.Size() != 0 {
		t.Fatalf("Unmarshal(nil): %v, size %d", err, c.Size())
	}
	if c.Increment("a") != 1 {
		t.Fatal("zeroed clock is not usable")
	}
	dec := msgpack.NewDecoder(bytes.NewReader([]byte{0xc0}))
	if err := c.DecodeMsgpack(dec); !errors.Is(err, vclock.ErrInvalidClock) {
		t.Fatalf("DecodeMsgpack(nil) = %v, want ErrInvalidClock", err)
	}
}

// Clocks embed in messages by pointer or by value.
func TestEmbedded(t *testing.T) {
	type msg struct {
		Actor string
		Clock *vclock.Clock
	}
	in := msg{Actor: "a", Clock: clockOf(t, entries{"a": {Count: 1, Insert: 2, Time: 3}})}
	for _, codec := range codecs {
		b, err := codec.marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out msg
		if err := codec.unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", codec.name, err)
		}
		if out.Actor != "a" || out.Clock == nil || !out.Clock.Equal(in.Clock) {
			t.Fatalf("%s: got %+v", codec.name, out)
		}
	}
}

// jsonToMsgpack re-encodes a JSON document as msgpack, keeping integers as
// integers. It reports false if in is not valid JSON.
func jsonToMsgpack(t *testing.T, in string) ([]byte, bool) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(in))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return nil, false
	}
	var conv func(any) any
	conv = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return n
			}
			if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				return n
			}
			f, _ := v.Float64()
			return f
		case map[string]any:
			for k, e := range v {
				v[k] = conv(e)
			}
		case []any:
			for i, e := range v {
				v[i] = conv(e)
			}
		}
		return v
	}
	b, err := msgpack.Marshal(conv(v))
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func TestMsgpackDuplicates(t *testing.T) {
	entry := func(enc *msgpack.Encoder, fields ...string) {
		_ = enc.EncodeMapLen(len(fields))
		for _, f := range fields {
			_ = enc.EncodeString(f)
			_ = enc.EncodeUint(1)
		}
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	_ = enc.EncodeMapLen(2)
	for range 2 {
		_ = enc.EncodeString("a")
		entry(enc, "count", "insert", "time")
	}
	if err := msgpack.Unmarshal(buf.Bytes(), vclock.New()); !errors.Is(err, vclock.ErrInvalidClock) {
		t.Errorf("duplicate id: %v", err)
	}
	buf.Reset()
	_ = enc.EncodeMapLen(1)
	_ = enc.EncodeString("a")
	entry(enc, "count", "insert", "time", "time")
	if err := msgpack.Unmarshal(buf.Bytes(), vclock.New()); !errors.Is(err, vclock.ErrInvalidClock) {
		t.Errorf("duplicate field: %v", err)
	}
	buf.Reset()
	_ = enc.EncodeMapLen(1)
	_ = enc.EncodeString("a")
	entry(enc, "count", "insert", "time")
	if err := msgpack.Unmarshal(buf.Bytes(), vclock.New()); err != nil {
		t.Errorf("valid hand-encoded clock: %v", err)
	}
}
