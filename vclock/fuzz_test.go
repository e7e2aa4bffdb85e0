package vclock_test

import (
	"encoding/json"
	"testing"

	"github.com/notp-go/notp/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// fuzzSeeds returns valid encodings plus near misses.
func fuzzSeeds(f *testing.F, marshal func(any) ([]byte, error)) {
	f.Helper()
	c := vclock.New()
	for _, id := range []string{"a", "node-1", "ü"} {
		c.Increment(id)
	}
	c.Update("big", 1<<63)
	b, err := marshal(c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	if len(b) > 3 {
		f.Add(b[:len(b)/2])
	}
	empty, _ := marshal(vclock.New())
	f.Add(empty)
}

// FuzzDecodeMsgpack checks that decoding never panics and that whatever
// decodes re-encodes to an Equal clock.
func FuzzDecodeMsgpack(f *testing.F) {
	fuzzSeeds(f, msgpack.Marshal)
	f.Add([]byte{0xc0})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}) // map32 claiming 4G entries
	f.Add([]byte{0x81, 0xa1, 'a', 0x83, 0xa5, 'c', 'o', 'u', 'n', 't', 0xff, 0xa6, 'i', 'n', 's', 'e', 'r', 't', 0x01, 0xa4, 't', 'i', 'm', 'e', 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := vclock.New()
		if err := msgpack.Unmarshal(data, c); err != nil {
			return
		}
		b, err := msgpack.Marshal(c)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		d := vclock.New()
		if err := msgpack.Unmarshal(b, d); err != nil {
			t.Fatalf("re-decode %x: %v", b, err)
		}
		if !d.Equal(c) {
			t.Fatalf("round trip %v -> %v", c, d)
		}
	})
}

// FuzzDecodeJSON checks that decoding never panics and that whatever decodes
// re-encodes to an Equal clock.
func FuzzDecodeJSON(f *testing.F) {
	fuzzSeeds(f, json.Marshal)
	for _, s := range []string{`null`, `[]`, `{"a":{"count":1,"insert":2,"time":3,"x":[{}]}}`, `{"\xff":{"count":1,"insert":2,"time":3}}`, `{"a":{"count":-1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := vclock.New()
		if err := c.UnmarshalJSON(data); err != nil {
			return
		}
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		d := vclock.New()
		if err := d.UnmarshalJSON(b); err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if !d.Equal(c) {
			t.Fatalf("round trip %v -> %v", c, d)
		}
	})
}
